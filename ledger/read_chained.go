package ledger

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ChainAt returns chain_seq of LEDGER, the hash-chain value after the
// event with sequence seq, from that message's Prev header and leaf. A
// message without a valid Prev header (written before the chain existed)
// gives ErrTampered: its chain value is only known by hashing from the
// start. A projection snapshot records ChainAt of the sequence it
// reflects, so that a loader proves that the ledger still has, at that
// sequence, the history the snapshot was made from.
func (s *Store) ChainAt(ctx context.Context, seq uint64) (Sum, error) {
	if s.isClosed() {
		return Sum{}, ErrClosed
	}
	m, err := s.ledger.GetMsg(ctx, seq)
	if err != nil {
		return Sum{}, fmt.Errorf("ledger: chain at %d: %w", seq, s.mapErr(err))
	}
	if m.Sequence != seq {
		return Sum{}, &TamperError{Stream: ledgerStream, Seq: seq, Reason: fmt.Sprintf("store answered with seq %d", m.Sequence)}
	}
	raw := rawFrom(ledgerStream, m)
	prev, ok := parseSum(raw.Prev)
	if !ok {
		return Sum{}, &TamperError{Stream: ledgerStream, Seq: seq, Reason: "no chain link (Prev header)"}
	}
	return chainNext(prev, raw.Leaf()), nil
}

// ReplayChained is Replay from from (>= 1) that also checks the hash
// chain on the way: the message at from must link to prev (chain_{from-1},
// e.g. a snapshot's ChainAt(from-1)), and every later one to the one
// before it, by its Prev header and leaf. It returns the last sequence
// delivered and its chain value; a broken link stops it with ErrTampered
// before that event is delivered. When it reaches the head this Store
// loaded or appended, the chain value must also be that head's.
func (s *Store) ReplayChained(ctx context.Context, from uint64, prev Sum, fn func(Event) error) (last uint64, sum Sum, err error) {
	from = max(from, 1)
	last, sum = from-1, prev
	head, err := s.Head(ctx)
	if err != nil || head < from {
		return last, sum, err
	}
	at := last // the sequence sum is the chain value after
	last, err = s.replayRange(ctx, from, head, func(m jetstream.Msg, ev Event) error {
		next, err := linkOf(m, ev.Seq, at, sum)
		if err != nil {
			return err
		}
		if err := fn(ev); err != nil {
			return fmt.Errorf("ledger: replay seq %d: %w", ev.Seq, err)
		}
		at, sum = ev.Seq, next
		return nil
	})
	if err != nil {
		return last, sum, err
	}
	if seq, h := s.chains.ledger.head(); seq == last && h != sum {
		return last, sum, &TamperError{Stream: ledgerStream, Seq: last, Reason: "chain differs from the head loaded at open"}
	}
	return last, sum, nil
}

// linkOf checks that consumed message m (sequence seq) follows the one at
// last, whose chain value is sum, and returns chain_seq.
func linkOf(m jetstream.Msg, seq, last uint64, sum Sum) (Sum, error) {
	if seq != last+1 {
		return Sum{}, &TamperError{Stream: ledgerStream, Seq: last + 1, Reason: fmt.Sprintf("missing (next is %d)", seq)}
	}
	raw := rawMessage(ledgerStream, seq, m.Subject(), m.Headers(), m.Data())
	if p, ok := parseSum(raw.Prev); !ok || p != sum {
		return Sum{}, &TamperError{Stream: ledgerStream, Seq: seq, Reason: "does not link to the chain before it"}
	}
	return chainNext(sum, raw.Leaf()), nil
}
