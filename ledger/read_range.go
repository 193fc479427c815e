package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// defaultReplayStall is how long a bounded read waits for its next
// message before it gives its consumer up and reads on from a new one.
// The server answers a pull at once when it has the messages; a consumer
// that stays silent is lost (a node restarted under it, a leader moved).
// nats.go's ordered consumer would notice that only after two missed
// heartbeats (10 s) and then spend up to 10 s deleting it and 10 s per
// attempt creating the next, which used up a 30 s request in a loaded
// cluster.
const defaultReplayStall = 3 * time.Second

// stallReader reads one stream in order through ordered consumers that it
// replaces when they go silent. The caller passes the sequence of the
// last message it handled to next, so a replacement starts right after
// it; messages at or below it may still come (an ordered-consumer reset)
// and are the caller's to skip. A read that stops early must call close.
type stallReader struct {
	s     *Store
	st    jetstream.Stream
	cfg   jetstream.OrderedConsumerConfig // filter, headers-only; orderedFrom sets the start
	batch int
	stall time.Duration // doubles at each replacement: a slow store gets longer each time
	what  string        // for errors and the log

	c  jetstream.Consumer
	it jetstream.MessagesContext
}

// next returns the next message the consumer delivers. When none comes
// for the stall time and ctx is still live, it ends the consumer and asks
// again from last+1 on a new one, until ctx ends.
func (r *stallReader) next(ctx context.Context, last uint64) (jetstream.Msg, error) {
	for {
		if r.it == nil {
			c, err := r.s.orderedFrom(ctx, r.st, r.cfg, last+1)
			if err != nil {
				return nil, err
			}
			it, err := c.Messages(jetstream.PullMaxMessages(r.batch))
			if err != nil {
				return nil, fmt.Errorf("ledger: %s: %w", r.what, r.s.mapErr(err))
			}
			r.c, r.it = c, it
		}
		nctx, cancel := context.WithTimeout(ctx, r.stall)
		m, err := r.it.Next(jetstream.NextContext(nctx))
		cancel()
		if err == nil {
			return m, nil
		}
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("ledger: %s after %d: %w", r.what, last, r.s.mapErr(err))
		}
		r.s.log.Warn("ledger: consumer silent; reading on from a new one", "read", r.what, "after", last, "waited", r.stall)
		r.close()
		r.stall *= 2
	}
}

// close ends the consumer in use, if any.
func (r *stallReader) close() {
	if r.it != nil {
		r.s.endConsumer(r.st, r.c, r.it)
		r.c, r.it = nil, nil
	}
}

// errStopRead ends readEvents early without an error (fn found what it
// needed).
var errStopRead = errors.New("ledger: read stopped")

// replayRange delivers, in order and each once, the LEDGER messages with
// sequence in [from, head] to fn (see readEvents).
func (s *Store) replayRange(ctx context.Context, from, head uint64, fn func(jetstream.Msg, Event) error) (uint64, error) {
	r := &stallReader{s: s, st: s.ledger, batch: replayBatch, stall: s.replayStall, what: "replay"}
	return s.readEvents(ctx, r, from, head, fn)
}

// readEvents delivers the LEDGER messages r reads (all of them, or those
// of its filter) from sequence from until one at or after head, in order
// and each once, to fn, and returns the last sequence fn accepted
// (from-1 if none). fn gets each message with its decoded event; an error
// from fn stops the read and is returned as it is, except errStopRead,
// which stops it with a nil error. A gap is fn's to judge, since it sees
// each sequence.
func (s *Store) readEvents(ctx context.Context, r *stallReader, from, head uint64, fn func(jetstream.Msg, Event) error) (uint64, error) {
	defer r.close()
	last := from - 1
	for last < head {
		m, err := r.next(ctx, last)
		if err != nil {
			return last, err
		}
		ev, err := msgEvent(m)
		if err != nil {
			return last, err
		}
		if ev.Seq <= last {
			continue // redelivered after an ordered-consumer reset
		}
		if err := fn(m, ev); err != nil {
			if errors.Is(err, errStopRead) {
				return ev.Seq, nil
			}
			return last, err
		}
		last = ev.Seq
	}
	return last, nil
}
