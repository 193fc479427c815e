package ledger

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// stallJS is a JetStream whose publishes of the messages hold picks are
// held, as a stalled server holds them: no answer, and stored only when
// the stall ends, late. A stall ends when the next message is published;
// an asynchronous publish's stall also ends when someone waits for every
// pending publish (PublishAsyncComplete), as the real context counts it
// pending until its answer; a synchronous one is not counted.
type stallJS struct {
	jetstream.JetStream
	t    *testing.T
	hold func(*nats.Msg) bool

	mu    sync.Mutex
	held  []*nats.Msg
	async int // of held, published asynchronously
}

func (s *stallJS) PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if s.hold(msg) {
		s.mu.Lock()
		s.held, s.async = append(s.held, msg), s.async+1
		s.mu.Unlock()
		return stalledFuture{msg: msg}, nil // never answered: its answer is lost
	}
	s.release(true)
	return s.JetStream.PublishMsgAsync(msg, opts...)
}

func (s *stallJS) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if s.hold(msg) {
		s.mu.Lock()
		s.held = append(s.held, msg)
		s.mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	s.release(true)
	return s.JetStream.PublishMsg(ctx, msg, opts...)
}

func (s *stallJS) PublishAsyncPending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.async + s.JetStream.PublishAsyncPending()
}

func (s *stallJS) PublishAsyncComplete() <-chan struct{} {
	s.release(false)
	return s.JetStream.PublishAsyncComplete()
}

// release ends the stall (of every held message, or only if one was
// published asynchronously): the held messages are stored now.
func (s *stallJS) release(all bool) {
	s.mu.Lock()
	held := s.held
	if !all && s.async == 0 {
		held = nil
	}
	if len(held) > 0 {
		s.held, s.async = nil, 0
	}
	s.mu.Unlock()
	for _, m := range held {
		if _, err := s.JetStream.PublishMsg(context.Background(), m); err != nil {
			s.t.Errorf("the late message: %v", err)
		}
	}
}

type stalledFuture struct{ msg *nats.Msg }

func (f stalledFuture) Ok() <-chan *jetstream.PubAck { return nil }
func (f stalledFuture) Err() <-chan error            { return nil }
func (f stalledFuture) Msg() *nats.Msg               { return f.msg }

// TestLateMemberNotPassedByTheNextGroup: a message whose answer is lost
// (a stalled server), sent in a group or alone, is stored later; the
// client retries its command (same command id, so same message id, but
// another event). The next group must not chain its second member over
// the retry, whose place the late message took: the head is reloaded
// only once the late message has its answer. Before, the retry was
// refused (the stream had moved), the member after it matched both the
// moved stream's last sequence and the late message's id, and was stored
// with a Prev over the retry: a broken chain on disk.
func TestLateMemberNotPassedByTheNextGroup(t *testing.T) {
	for _, alone := range []bool{false, true} {
		s := openTestStore(t, "")
		ctx := context.Background()
		mustAppend(t, s, KeySubject("enc", "base"), 2)
		c := s.chains.ledger
		c.ackTimeout = 200 * time.Millisecond
		req := func(ev Event) *groupReq {
			body, err := encodeEvent(ev)
			if err != nil {
				t.Fatal(err)
			}
			msg := newMsg(ev, s.storedEvent(body, ev.Aggregate))
			msg.Header.Set(jetstream.MsgIDHeader, ScopedMsgID(ev.Aggregate, ev.CommandID))
			raw := RawMessage{Type: ev.Type, Body: msg.Data}
			return &groupReq{ctx: ctx, msg: msg, sum: raw.bodySum(), done: make(chan struct{})}
		}
		first := testEvent(KeySubject("enc", "k"), "retried-cmd")
		retry := first
		retry.ID = "ev-retried-cmd-again" // decided again: another event, the same command id
		late := req(first)
		id, held := late.msg.Header.Get(nats.MsgIdHdr), false
		sj := &stallJS{JetStream: s.js, t: t, hold: func(m *nats.Msg) bool {
			if held || m.Header.Get(nats.MsgIdHdr) != id {
				return false
			}
			held = true // the first publish only, not the retry's
			return true
		}}
		if alone {
			lctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			c.mu.Lock()
			_, late.err = c.publishLocked(lctx, sj, late.msg, true)
			c.mu.Unlock()
			cancel()
		} else {
			c.commitGroup(sj, []*groupReq{late}, func() []*groupReq { return nil })
			<-late.done
		}
		if late.err == nil {
			t.Fatalf("alone %v: the stalled message was stored in time; want its answer lost", alone)
		}

		group := []*groupReq{req(retry), req(testEvent(KeySubject("enc", "other"), "other-cmd"))}
		c.commitGroup(sj, group, func() []*groupReq { return nil })
		for _, r := range group {
			<-r.done
		}
		if r := group[0]; r.err != nil || !r.ack.Duplicate || r.ack.Sequence != 3 {
			t.Errorf("alone %v: the retry: %+v, %v; want the duplicate of the late message at 3", alone, r.ack, r.err)
		}
		if r := group[1]; r.err != nil || r.ack.Sequence != 4 {
			t.Fatalf("alone %v: the member after the retry: %+v, %v; want it stored at 4", alone, r.ack, r.err)
		}
		if _, _, err := s.ReplayChained(ctx, 1, Sum{}, func(Event) error { return nil }); err != nil {
			t.Fatalf("alone %v: chain after a late message and a retry of it: %v", alone, err)
		}
	}
}
