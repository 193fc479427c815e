package projections

import (
	"context"
	"errors"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
)

// Errors of the time-travel functions.
var (
	// ErrPointInTime: neither or both of a sequence and a time were given.
	ErrPointInTime = newClientError("give exactly one of a sequence and a time")
	// ErrBeyondHead: the sequence asked for is not in the ledger yet.
	ErrBeyondHead = newClientError("sequence is beyond the ledger head")
)

// errStop ends a replay early; it never leaves this file.
var errStop = errors.New("projections: stop replay")

// StateAt rebuilds the state as it was after event seq (inclusive), or
// as it was at time at: exactly one of seq (> 0) and at (non-zero) must
// be set. It replays LEDGER into a fresh State and needs no REK: a State
// holds references to sealed material, never the material.
//
// As of a time, the state is the longest prefix of the stream whose
// events were all decided at or before at. Events are decided in (almost)
// stream order; an event decided before at but appended after one decided
// after at was not in the ledger at that moment, so it is left out. The
// answer is therefore always a state that really existed (State.Seq says
// which), never a mix. A time before the first event gives an empty state
// with Seq 0; a time in the future gives the head.
//
// Cost: one replay from the start of the ledger.
func StateAt(ctx context.Context, store *ledger.Store, seq uint64, at time.Time) (*State, error) {
	if err := checkPoint(ctx, store, seq, at); err != nil {
		return nil, err
	}
	st := NewState()
	_, err := store.Replay(ctx, 1, func(ev ledger.Event) error {
		if (seq != 0 && ev.Seq > seq) || (seq == 0 && ev.Time.After(at)) {
			return errStop
		}
		if err := st.Apply(ev); err != nil {
			return err
		}
		if ev.Seq == seq {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return st, nil
}

// checkPoint refuses a point in time that is not exactly one of a
// sequence and a time, or a sequence beyond the head.
func checkPoint(ctx context.Context, store *ledger.Store, seq uint64, at time.Time) error {
	if (seq == 0) == at.IsZero() {
		return ErrPointInTime
	}
	if seq != 0 {
		head, err := store.Head(ctx)
		if err != nil {
			return err
		}
		if seq > head {
			return refuse(ErrBeyondHead, "%d > %d", seq, head)
		}
	}
	return nil
}

// StateAt is the package function StateAt on the projection's store, with
// the same answers, but served from an index of encoded states kept at
// intervals on disk (asof_index.go): it replays only the events after the
// nearest one, not the whole ledger. The index is built by the first
// call.
func (p *Projection) StateAt(ctx context.Context, seq uint64, at time.Time) (*State, error) {
	if err := checkPoint(ctx, p.store, seq, at); err != nil {
		return nil, err
	}
	return p.asof.stateAt(ctx, seq, at, "")
}

// EnclaveStateAt is StateAt restricted to one enclave: the state holds
// that enclave (if it existed then) and what is outside every enclave,
// and costs only the reading and decoding of that enclave.
func (p *Projection) EnclaveStateAt(ctx context.Context, seq uint64, at time.Time, enclave string) (*State, error) {
	if err := checkPoint(ctx, p.store, seq, at); err != nil {
		return nil, err
	}
	return p.asof.stateAt(ctx, seq, at, enclave)
}

// Events calls fn, in stream order, for every LEDGER event with sequence
// from or later, up to the head at the time of the call; fn returns false
// to stop early (that event counts as not consumed). It returns the
// sequence of the last event fn consumed (from-1 if none), so that a
// caller resumes with Events(ctx, last+1, …).
func (p *Projection) Events(ctx context.Context, from uint64, fn func(ledger.Event) bool) (last uint64, err error) {
	from = max(from, 1)
	last = from - 1
	_, err = p.store.Replay(ctx, from, func(ev ledger.Event) error {
		if !fn(ev) {
			return errStop
		}
		last = ev.Seq
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return last, err
	}
	return last, nil
}

// Head returns the sequence of the newest LEDGER event (0 if none).
func (p *Projection) Head(ctx context.Context) (uint64, error) {
	return p.store.Head(ctx)
}
