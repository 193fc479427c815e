// One writer per chained stream in an embedded cluster.
//
// Every LEDGER and AUDIT message is a link of its stream's hash chain and
// is published with the expected last stream sequence of the writer's
// head. Nodes appending at once would keep failing each other's
// expectations, each failure costing a reload of the head from the
// leader and another try. So each chained stream has one writer: the
// node that leads the stream's Raft group. It serves the request subject
// writerSubject(stream) in a queue group, and directSubject(stream, node)
// that forwarders use once they know the leader's name
// (cluster_leader.go); the other nodes forward their messages to it
// (headers and body as they would publish them) and get the PubAck
// back. The writer serves each request in its own goroutine and
// publishes the messages as its own, grouped with its own appends
// (group.go).
//
// When the leader changes, the old leader stops serving and the new one
// starts within writerPoll. A forwarded message whose outcome is unknown
// (no writer yet, a timeout) is sent again with the same Nats-Msg-Id, so
// it is stored once. A forwarder does not wait out its attempt on a
// writer that died: JetStream's advisory of the stream's new leader ends
// every attempt in flight, and they are sent again at once (to the new
// writer, or after a short backoff until it serves).

package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// writerPoll is how often a node checks whether it leads a stream.
const writerPoll = 50 * time.Millisecond

// writerTimeout bounds the writer's work on one forwarded request; the
// forwarding node waits a little longer.
//
// It is also how long a forwarding node waits on a writer that died
// without its subscription being gone yet (a kill -9 leaves it until the
// route times out): every forwarded write, audit batches included, waits
// at most this long before it is sent again. So it stays short, batches
// too; a batch stored after its forwarder stopped waiting is recognised
// on the retry (storedBatch).
const writerTimeout = 4 * time.Second

// Headers of a forwarded message.
const (
	fwdSubjectHeader = "Kmsledger-Fwd-Subject" // the subject to publish on
	fwdBatchHeader   = "Kmsledger-Fwd-Batch"   // "1": the body is a fwdBatch
)

// writerSubject is the request subject of stream's writer. It is outside
// every stream's subjects.
func writerSubject(stream string) string { return "kmsledger.writer." + stream }

// fwdAnswer is the writer's answer.
type fwdAnswer struct {
	Seq       uint64              `json:"seq,omitempty"`
	Duplicate bool                `json:"duplicate,omitempty"`
	APIError  *jetstream.APIError `json:"api_error,omitempty"`
	Error     string              `json:"error,omitempty"`
	Unknown   bool                `json:"unknown,omitempty"` // the outcome is unknown: retry
}

// fwdMsg is one message of a forwarded batch.
type fwdMsg struct {
	Subject string      `json:"subject"`
	Header  nats.Header `json:"header"`
	Data    []byte      `json:"data"`
}

// writer decides which chained streams this node writes and forwards
// the rest.
type writer struct {
	s        *Store
	ctx      context.Context // ends when the Store closes
	mu       sync.Mutex
	serves   map[string][]*nats.Subscription // streams this node writes: queue and direct subjects
	elected  map[string]election             // ends when the stream next elects a leader
	leaders  map[string]leaderName           // stream → its leader, if known (cluster_leader.go)
	learning map[string]bool                 // stream → its leader is being asked
}

// leaderAdvisory is the subject of JetStream's advisory that stream has
// elected a leader.
func leaderAdvisory(stream string) string {
	return "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED." + stream
}

// election is a context that ends when a stream next elects a leader.
type election struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// electedCtx returns a context that ends when stream next elects a leader.
func (w *writer) electedCtx(stream string) context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.elected[stream]
	if !ok {
		e.ctx, e.cancel = context.WithCancel(context.Background())
		w.elected[stream] = e
	}
	return e.ctx
}

// leaderElected records the leader an election advisory named and wakes
// the forwarders waiting on stream's old writer. A name that cannot be a
// node's (ValidName: it becomes a subject token, cluster_leader.go) is
// recorded as unknown.
func (w *writer) leaderElected(stream, leader string) {
	if !ValidName(leader) {
		leader = ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.leaders[stream] = leaderName{leader, time.Now()}
	if e, ok := w.elected[stream]; ok {
		e.cancel()
	}
	var e election
	e.ctx, e.cancel = context.WithCancel(context.Background())
	w.elected[stream] = e
}

// startWriter starts the leadership watch of an embedded cluster node.
func (s *Store) startWriter() {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{s: s, ctx: ctx, serves: map[string][]*nats.Subscription{}, elected: map[string]election{},
		leaders: map[string]leaderName{}, learning: map[string]bool{}}
	s.chains.ledger.w, s.chains.audit.w = w, w
	var advisories []*nats.Subscription
	for _, name := range []string{ledgerStream, auditStream, secretsStream} {
		sub, err := s.nc.Subscribe(leaderAdvisory(name), func(m *nats.Msg) {
			var adv struct {
				Leader string `json:"leader"`
			}
			_ = json.Unmarshal(m.Data, &adv)
			s.log.Info("ledger: the stream elected a leader", "stream", name, "leader", adv.Leader)
			w.leaderElected(name, adv.Leader)
		})
		if err != nil {
			// Forwarders then wait out an attempt on a dead writer.
			s.log.Warn("ledger: cannot follow the stream's leader elections", "stream", name, "err", err)
			continue
		}
		advisories = append(advisories, sub)
	}
	for _, c := range []*chainHead{s.chains.ledger, s.chains.audit} {
		w.learn(c.name)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(writerPoll)
		defer t.Stop()
		for {
			w.update()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	s.stopWriter = func() {
		cancel()
		<-done
		w.stopAll()
		for _, sub := range advisories {
			sub.Unsubscribe()
		}
	}
}

// writes reports whether this node writes stream now.
func (w *writer) writes(stream string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.serves[stream]) > 0
}

// update serves the streams this node leads and stops serving the others.
func (w *writer) update() {
	for _, c := range []*chainHead{w.s.chains.ledger, w.s.chains.audit} {
		lead := w.s.ns.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, c.name)
		w.mu.Lock()
		subs := w.serves[c.name]
		w.mu.Unlock()
		switch {
		case lead && subs == nil:
			// A new writer starts from the stream as it is. It asks
			// for a reload without waiting for c.mu: a checkpoint or
			// a publish may hold it across a request to a leader that
			// is gone, and every node would wait for this one to write.
			c.requestReload()
			subs, err := w.subscribe(c)
			if err != nil {
				w.s.log.Warn("ledger: cannot serve as writer", "stream", c.name, "err", err)
				continue
			}
			w.mu.Lock()
			w.serves[c.name] = subs
			w.mu.Unlock()
			w.s.log.Info("ledger: this node now writes the stream", "stream", c.name)
		case !lead && subs != nil:
			for _, sub := range subs {
				sub.Unsubscribe()
			}
			w.mu.Lock()
			delete(w.serves, c.name)
			w.mu.Unlock()
			w.s.log.Info("ledger: another node now writes the stream", "stream", c.name)
		}
	}
}

// subscribe serves c's queue subject and this node's direct subject.
func (w *writer) subscribe(c *chainHead) ([]*nats.Subscription, error) {
	handle := func(m *nats.Msg) { go w.serve(c, m) }
	q, err := w.s.nc.QueueSubscribe(writerSubject(c.name), "writer", handle)
	if err != nil {
		return nil, err
	}
	d, err := w.s.nc.Subscribe(directSubject(c.name, w.s.node), handle)
	if err != nil {
		q.Unsubscribe()
		return nil, err
	}
	return []*nats.Subscription{q, d}, nil
}

func (w *writer) stopAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, subs := range w.serves {
		for _, sub := range subs {
			sub.Unsubscribe()
		}
		delete(w.serves, name)
	}
}

// serve publishes a forwarded message (or batch) as the next link of c
// and answers with its ack.
func (w *writer) serve(c *chainHead, m *nats.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), writerTimeout)
	defer cancel()
	var ans fwdAnswer
	var err error
	if m.Header.Get(fwdBatchHeader) == "1" {
		var msgs []*nats.Msg
		if msgs, err = decodeBatch(m.Data); err == nil {
			ans.Seq, err = c.publishBatch(ctx, w.s.nc, msgs)
		}
	} else {
		msg := nats.NewMsg(m.Header.Get(fwdSubjectHeader))
		msg.Data = m.Data
		for k, v := range m.Header {
			if k != fwdSubjectHeader {
				msg.Header[k] = v
			}
		}
		// Forwarded messages are served concurrently (see update), so
		// that those arriving together share a group (chain_group.go).
		var ack *jetstream.PubAck
		ack, err = c.q.submit(ctx, msg)
		if err == nil {
			ans.Seq, ans.Duplicate = ack.Sequence, ack.Duplicate
		}
	}
	if err != nil {
		var apiErr *jetstream.APIError
		switch {
		case errors.As(err, &apiErr) && !isUnknownOutcome(err):
			ans.APIError = apiErr
		case isUnknownOutcome(err):
			ans.Unknown, ans.Error = true, err.Error()
		default:
			ans.Error = err.Error()
		}
	}
	b, _ := json.Marshal(ans)
	m.Respond(b)
}

// decodeBatch reads a forwarded batch.
func decodeBatch(b []byte) ([]*nats.Msg, error) {
	var in []fwdMsg
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("ledger: forwarded batch: %w", err)
	}
	msgs := make([]*nats.Msg, len(in))
	for i, f := range in {
		msgs[i] = &nats.Msg{Subject: f.Subject, Header: f.Header, Data: f.Data}
	}
	return msgs, nil
}

// forward sends msg to stream's writer and returns its ack, retrying an
// unknown outcome with the same message until ctx ends or resendHorizon
// has passed.
func (w *writer) forward(ctx context.Context, stream string, msg *nats.Msg) (*jetstream.PubAck, error) {
	req := nats.NewMsg(writerSubject(stream))
	for k, v := range msg.Header {
		req.Header[k] = v
	}
	req.Header.Set(fwdSubjectHeader, msg.Subject)
	req.Data = msg.Data
	ans, err := w.request(ctx, stream, req)
	if err != nil {
		return nil, err
	}
	return &jetstream.PubAck{Stream: stream, Sequence: ans.Seq, Duplicate: ans.Duplicate}, nil
}

// forwardBatch sends a batch to stream's writer; it returns the last
// sequence.
func (w *writer) forwardBatch(ctx context.Context, stream string, msgs []*nats.Msg) (uint64, error) {
	out := make([]fwdMsg, len(msgs))
	for i, m := range msgs {
		out[i] = fwdMsg{Subject: m.Subject, Header: m.Header, Data: m.Data}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return 0, err
	}
	req := nats.NewMsg(writerSubject(stream))
	req.Header.Set(fwdBatchHeader, "1")
	req.Data = b
	var retried bool
	ans, err := w.requestRetried(ctx, stream, req, &retried)
	var apiErr *jetstream.APIError
	if retried && errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrCodeBatchDuplicate {
		// An earlier attempt whose answer was lost may have stored the
		// batch: it is ours if its first and last messages are stored
		// n-1 apart.
		if last, ok := w.storedBatch(ctx, msgs); ok {
			return last, nil
		}
	}
	if err != nil {
		return 0, err
	}
	return ans.Seq, nil
}

// storedBatch reports whether msgs are stored as one run of consecutive
// sequences (by their message ids), and the last one.
func (w *writer) storedBatch(ctx context.Context, msgs []*nats.Msg) (uint64, bool) {
	firstMsg, lastMsg := msgs[0], msgs[len(msgs)-1]
	first, ok, err := w.s.probe(ctx, firstMsg.Subject, firstMsg.Header.Get(jetstream.MsgIDHeader), nil)
	if err != nil || !ok {
		return 0, false
	}
	last, ok, err := w.s.probe(ctx, lastMsg.Subject, lastMsg.Header.Get(jetstream.MsgIDHeader), nil)
	if err != nil || !ok || last-first+1 != uint64(len(msgs)) {
		return 0, false
	}
	return last, true
}

// errNewLeader ends a forwarding attempt when the stream elects a leader.
var errNewLeader = errors.New("ledger: the stream elected a new leader")

// attempt sends req to stream's writer once and waits for the answer, for
// at most writerTimeout and a second, or until the stream elects a new
// leader (elected).
func (w *writer) attempt(ctx context.Context, stream string, req *nats.Msg) (m *nats.Msg, elected bool, err error) {
	err = w.untilElected(ctx, stream, writerTimeout+time.Second, func(ctx context.Context) error {
		m, err = w.send(ctx, stream, req)
		return err
	})
	return m, errors.Is(err, errNewLeader), err
}

// untilElected runs fn with a context that ends after d, or when stream
// elects a leader; then it returns errNewLeader (wrapping fn's error).
// Without a writer (a single server, an external NATS cluster) it only
// bounds fn by d.
func (w *writer) untilElected(ctx context.Context, stream string, d time.Duration, fn func(context.Context) error) error {
	if w == nil {
		tctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return fn(tctx)
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(w.electedCtx(stream), func() { cancel(errNewLeader) })
	defer stop()
	tctx, tcancel := context.WithTimeout(actx, d)
	defer tcancel()
	err := fn(tctx)
	if err != nil && errors.Is(context.Cause(actx), errNewLeader) {
		return fmt.Errorf("%w: %w", errNewLeader, err)
	}
	return err
}

// request sends req until the writer gives an answer that is not
// "unknown", or ctx ends, or resendHorizon has passed since the first
// send (ErrUnavailable).
func (w *writer) request(ctx context.Context, stream string, req *nats.Msg) (*fwdAnswer, error) {
	return w.requestRetried(ctx, stream, req, new(bool))
}

// requestRetried is request that sets *retried when it sent req more than
// once.
func (w *writer) requestRetried(ctx context.Context, stream string, req *nats.Msg, retried *bool) (*fwdAnswer, error) {
	const firstBackoff = 20 * time.Millisecond
	backoff := firstBackoff
	var last error
	first := time.Now()
	for {
		if *retried && !resendable(first, w.s.resendHorizon) {
			return nil, fmt.Errorf("%w: %s: no writer stored it within %s: %w", ErrUnavailable, stream, w.s.resendHorizon, last)
		}
		m, elected, err := w.attempt(ctx, stream, req)
		if elected && err != nil {
			// A new leader: the attempt was on the old writer, or had no
			// writer; send it again now.
			last, backoff, *retried = err, firstBackoff, true
			continue
		}
		if err == nil {
			var ans fwdAnswer
			if err := json.Unmarshal(m.Data, &ans); err != nil {
				return nil, fmt.Errorf("ledger: %s writer answer: %w", stream, err)
			}
			switch {
			case ans.APIError != nil:
				return nil, ans.APIError
			case ans.Unknown:
				last = errors.New(ans.Error)
			case ans.Error != "":
				return nil, fmt.Errorf("ledger: %s writer: %s", stream, ans.Error)
			default:
				return &ans, nil
			}
		} else {
			last = err // no writer yet (an election), or no answer in time
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s: no writer stored it: %w", ErrUnavailable, stream, last)
		case <-time.After(backoff):
		}
		*retried = true
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}
