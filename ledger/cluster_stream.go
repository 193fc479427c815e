package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrUnavailable reports that the cluster could not confirm an operation:
// the stream has no leader (an election is running, or this node is cut
// off from the majority). A write that fails with it may or may not have
// been stored; retrying it with the same command id is safe.
var ErrUnavailable = errors.New("ledger: cluster unavailable")

// leaderStream is a replicated stream whose reads go to its leader.
//
// nats.go reads messages with direct gets whenever a stream allows them,
// and any replica may answer a direct get, including one that has not
// yet applied what the leader acknowledged (no read-after-write). The
// chain head, verification, the duplicates probe and erasure need the
// leader's view, so on a replicated stream they read through the
// stream's MSG.GET API, which only the leader answers. Info insists on a
// leader too: a leaderless replica answers from its own state.
//
// The server drops a request it cannot answer yet without a word: a
// stream group that is new and has no leader yet (only its preferred
// member answers, and an update of the stream clears the preferred
// member), a member that has not yet applied the stream's assignment, a
// leader that has just stepped down. A dropped request would hold its
// caller until the caller's context ends (a minute or more for Open), so
// each request waits at most leaderAttempt for its answer and is then
// sent again, until the caller's context ends (see ask).
type leaderStream struct {
	jetstream.Stream
	nc   *nats.Conn
	name string
	log  *slog.Logger // nil = none
}

// storedMsg is a message in a MSG.GET answer.
type storedMsg struct {
	Subject  string    `json:"subject"`
	Sequence uint64    `json:"seq"`
	Header   []byte    `json:"hdrs,omitempty"`
	Data     []byte    `json:"data,omitempty"`
	Time     time.Time `json:"time"`
}

// msgGetResponse is the MSG.GET answer.
type msgGetResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *storedMsg          `json:"message,omitempty"`
}

// codeNoMessageFound is JetStream's JSNoMessageFoundErr.
const codeNoMessageFound jetstream.ErrorCode = 10037

func (l *leaderStream) get(ctx context.Context, req map[string]any) (*jetstream.RawStreamMsg, error) {
	var m *jetstream.RawStreamMsg
	err := l.ask(ctx, func(ctx context.Context) (err error) {
		m, err = msgGet(ctx, l.nc, l.name, req)
		return err
	})
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("%w: %s has no leader: %w", ErrUnavailable, l.name, err)
	}
	return m, err
}

// msgGet sends req to stream's MSG.GET API, which the stream's leader
// answers (a single server is its own leader). A request for a message
// that does not exist answers jetstream.ErrMsgNotFound.
func msgGet(ctx context.Context, nc *nats.Conn, stream string, req map[string]any) (*jetstream.RawStreamMsg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	m, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
	if err != nil {
		return nil, err
	}
	var r msgGetResponse
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return nil, fmt.Errorf("ledger: %s msg get: %w", stream, err)
	}
	if r.Error != nil {
		if r.Error.ErrorCode == codeNoMessageFound || r.Error.Code == 404 {
			return nil, jetstream.ErrMsgNotFound
		}
		return nil, r.Error
	}
	if r.Message == nil {
		return nil, fmt.Errorf("ledger: %s msg get: empty answer", stream)
	}
	out := &jetstream.RawStreamMsg{Subject: r.Message.Subject, Sequence: r.Message.Sequence,
		Data: r.Message.Data, Time: r.Message.Time}
	if len(r.Message.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(r.Message.Header)
		if err != nil {
			return nil, fmt.Errorf("ledger: %s msg get headers: %w", stream, err)
		}
		out.Header = h
	}
	return out, nil
}

// GetMsg reads message seq from the leader.
func (l *leaderStream) GetMsg(ctx context.Context, seq uint64, _ ...jetstream.GetMsgOpt) (*jetstream.RawStreamMsg, error) {
	return l.get(ctx, map[string]any{"seq": seq})
}

// GetLastMsgForSubject reads the last message on subject from the leader.
func (l *leaderStream) GetLastMsgForSubject(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	return l.get(ctx, map[string]any{"last_by_subj": subject})
}

// Info returns the leader's view of the stream, or ErrUnavailable when
// the stream has no leader.
func (l *leaderStream) Info(ctx context.Context, opts ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	var info *jetstream.StreamInfo
	err := l.ask(ctx, func(ctx context.Context) (err error) {
		info, err = l.Stream.Info(ctx, opts...)
		return err
	})
	if err != nil {
		if isUnknownOutcome(err) {
			return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, l.name, err)
		}
		return nil, err
	}
	if info.Cluster != nil && info.Cluster.Leader == "" {
		return nil, fmt.Errorf("%w: %s has no leader", ErrUnavailable, l.name)
	}
	return info, nil
}

// Bounds of a request to a stream's leader (leaderStream.ask).
const (
	leaderAttempt = 2 * time.Second // one request; the leader answers in about a millisecond
	leaderDefault = 5 * time.Second // all of them, when the caller's context has no deadline
)

// ask runs request, a request to the stream's leader, with a context
// that ends after leaderAttempt, again and again while it gets no answer
// in time, until ctx ends (after leaderDefault if ctx has no deadline).
// Requests to the leader only read, so sending one again is harmless.
func (l *leaderStream) ask(ctx context.Context, request func(context.Context) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, leaderDefault)
		defer cancel()
	}
	for {
		actx, cancel := context.WithTimeout(ctx, leaderAttempt)
		err := request(actx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return err
		}
		if l.log != nil {
			l.log.Debug("ledger: no answer from the stream's leader; asking again", "stream", l.name)
		}
	}
}

// codeMsgIDInProcess is JetStream's "duplicate message id is in process"
// (a retry while the first attempt is still being proposed).
const codeMsgIDInProcess jetstream.ErrorCode = 10158

// codeClusterNotAvailable is JetStream's JSClusterNotAvailErr.
const codeClusterNotAvailable jetstream.ErrorCode = 10008

// isUnknownOutcome reports whether a publish or API call failed without
// an answer that says what happened: a timeout, no leader to answer, an
// id still in flight. A publish that failed so may have been stored.
func isUnknownOutcome(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == codeMsgIDInProcess || apiErr.ErrorCode == codeClusterNotAvailable || apiErr.Code == 503
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, ErrUnavailable) || errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrConnectionReconnecting)
}
