package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// defaultReplayStall is how long a replay waits for its next message
// before it gives its consumer up and reads on from a new one. The server
// answers a pull at once when it has the messages; a consumer that stays
// silent is lost (a node restarted under it, a leader moved). nats.go's
// ordered consumer would notice that only after two missed heartbeats
// (10 s) and then spend up to 10 s deleting it and 10 s per attempt
// creating the next, which used up a 30 s request in a loaded cluster.
const defaultReplayStall = 3 * time.Second

// replayRange delivers, in order and each once, the LEDGER messages with
// sequence in [from, head] to fn, and returns the last sequence fn
// accepted (from-1 if none). fn gets each message with its decoded event;
// an error from fn stops the read and is returned as it is.
//
// A read that gets no message for the stall time while messages remain
// ends its consumer and goes on from last+1 on a new one, with twice the
// stall time (a slow store gets longer each time), until ctx ends. A
// message at or below last (redelivered after an ordered-consumer reset)
// is skipped; a gap is fn's to judge, since it sees each sequence.
func (s *Store) replayRange(ctx context.Context, from, head uint64, fn func(jetstream.Msg, Event) error) (uint64, error) {
	last := from - 1
	stall := s.replayStall
	for last < head {
		next, stalled, err := s.replayOnce(ctx, last, head, stall, fn)
		last = next
		if err != nil || !stalled {
			return last, err
		}
		s.log.Warn("ledger: replay consumer silent; reading on from a new one",
			"after", last, "head", head, "waited", stall)
		stall *= 2
	}
	return last, nil
}

// replayOnce is one consumer's part of replayRange, from last+1. It
// reports stalled when no message came for stall and ctx is still live.
func (s *Store) replayOnce(ctx context.Context, last, head uint64, stall time.Duration,
	fn func(jetstream.Msg, Event) error) (uint64, bool, error) {
	c, err := s.consumerFrom(ctx, last+1)
	if err != nil {
		return last, false, err
	}
	it, err := c.Messages(jetstream.PullMaxMessages(replayBatch))
	if err != nil {
		return last, false, fmt.Errorf("ledger: replay: %w", s.mapErr(err))
	}
	defer s.endConsumer(s.ledger, c, it)
	for last < head {
		nctx, cancel := context.WithTimeout(ctx, stall)
		m, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return last, true, nil
			}
			return last, false, fmt.Errorf("ledger: replay after %d: %w", last, s.mapErr(err))
		}
		ev, err := msgEvent(m)
		if err != nil {
			return last, false, err
		}
		if ev.Seq <= last {
			continue // redelivered after an ordered-consumer reset
		}
		if err := fn(m, ev); err != nil {
			return last, false, err
		}
		last = ev.Seq
	}
	return last, false, nil
}
