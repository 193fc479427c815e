// Forwarding to the leader by name.
//
// Every node serving as writer subscribes writerSubject(stream) in a
// queue group, and the server picks one member for each request. A node
// that hangs (stopped, swapped out, stuck in I/O) keeps its subscription
// in the other servers' interest until their routes to it time out,
// minutes later: after the stream has elected another leader, a
// forwarded write then went to the hung node about every second attempt,
// and each such attempt waited writerTimeout. So the writer also serves
// directSubject(stream, node), and a forwarder that knows the stream's
// leader sends there: the advisory of each election names it, and a node
// that has seen none yet asks the stream. Without a name, or when the
// named node does not serve (an election in progress, or a node of an
// earlier version), the request goes to the queue group as before.

package ledger

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
)

// directSubject is the request subject only node's writer of stream
// serves. Node names are subject tokens (ValidName).
func directSubject(stream, node string) string { return writerSubject(stream) + "." + node }

// leaderLearnFor bounds how long a node asks a stream for its leader.
const leaderLearnFor = 30 * time.Second

// directGrace is how long after learning a leader's name a forwarder
// waits for it to serve (it subscribes within writerPoll of its
// election) before it also tries the queue group.
const directGrace = time.Second

// leaderName is a stream's leader as this node knows it, and since when.
type leaderName struct {
	node  string
	since time.Time
}

// leader is the node that leads stream, as far as this node knows (node
// "" if it does not).
func (w *writer) leader(stream string) leaderName {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.leaders[stream]
}

// learn asks stream for its leader in the background, unless it is
// already asked; an election advisory that arrives meanwhile wins.
func (w *writer) learn(stream string) {
	elected := w.electedCtx(stream) // ends with the next advisory
	w.mu.Lock()
	if w.learning[stream] {
		w.mu.Unlock()
		return
	}
	w.learning[stream] = true
	w.mu.Unlock()
	go func() {
		defer func() {
			w.mu.Lock()
			w.learning[stream] = false
			w.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(w.ctx, leaderLearnFor)
		defer cancel()
		for ctx.Err() == nil {
			name := w.askLeader(ctx, stream)
			w.mu.Lock()
			if elected.Err() != nil {
				w.mu.Unlock()
				return // an advisory named a newer leader
			}
			if name != "" {
				if w.leaders[stream].node != name {
					w.leaders[stream] = leaderName{name, time.Now()}
				}
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
}

// askLeader returns the leader stream reports, "" if none or no answer.
func (w *writer) askLeader(ctx context.Context, stream string) string {
	actx, cancel := context.WithTimeout(ctx, writerTimeout)
	defer cancel()
	st, err := w.s.js.Stream(actx, stream)
	if err != nil {
		return ""
	}
	if c := st.CachedInfo().Cluster; c != nil && ValidName(c.Leader) {
		return c.Leader
	}
	return ""
}

// send sends req to stream's writer once: to the leader by name when
// this node knows it, else to the queue group. A named leader that does
// not serve yet gets directGrace to start (the error is "no responders",
// and the caller tries again); after that the queue group is tried too
// (a node of an earlier version serves only that), and the stream is
// asked again. So is it when an attempt on the named leader gets no
// answer in time (an advisory this node missed may have named another).
func (w *writer) send(ctx context.Context, stream string, req *nats.Msg) (*nats.Msg, error) {
	l := w.leader(stream)
	if l.node == "" {
		w.learn(stream)
		return w.s.nc.RequestMsgWithContext(ctx, req)
	}
	direct := &nats.Msg{Subject: directSubject(stream, l.node), Header: req.Header, Data: req.Data}
	m, err := w.s.nc.RequestMsgWithContext(ctx, direct)
	switch {
	case errors.Is(err, nats.ErrNoResponders) && time.Since(l.since) >= directGrace:
		w.learn(stream)
		return w.s.nc.RequestMsgWithContext(ctx, req)
	case errors.Is(err, context.DeadlineExceeded):
		w.learn(stream)
	}
	return m, err
}
