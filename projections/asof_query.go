package projections

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
)

// asofView is what a query reads from the index: the point (ok false:
// none, start from the empty state), the block of each enclave it asks
// for, and the file they are in, held until the query has read them.
type asofView struct {
	ok     bool
	point  asofPoint
	blocks []enclaveBlock
	file   *spillFile
}

// enclaveBlock is an enclave's state at a point: its history entry.
type enclaveBlock struct {
	name string
	ent  asofEntry
}

// stateAt is StateAt through the index; with only set, the state holds
// only that enclave (and what is outside every enclave). If the index
// fails, the answer comes from a full replay.
func (x *asofIndex) stateAt(ctx context.Context, seq uint64, at time.Time, only string) (*State, error) {
	st, err := x.fromIndex(ctx, seq, at, only)
	if isSpill(err) {
		if !errors.Is(err, errIndexClosed) {
			x.log.Warn("time travel: the index failed, replaying the ledger", "err", err)
		}
		return replayAt(ctx, x.store, seq, at, only)
	}
	return st, err
}

// replayAt is stateAt by a full replay (package StateAt).
func replayAt(ctx context.Context, store *ledger.Store, seq uint64, at time.Time, only string) (*State, error) {
	st, err := StateAt(ctx, store, seq, at)
	if err != nil {
		return nil, err
	}
	st.forgetSubjects()
	if only != "" {
		for name := range st.Enclaves {
			if name != only {
				delete(st.Enclaves, name)
			}
		}
	}
	return st, nil
}

// fromIndex decodes the nearest point and replays the events after it.
func (x *asofIndex) fromIndex(ctx context.Context, seq uint64, at time.Time, only string) (*State, error) {
	if err := x.extend(ctx); err != nil {
		return nil, err
	}
	v, err := x.view(seq, at, only)
	if err != nil {
		return nil, err
	}
	st, err := v.decode()
	x.mu.Lock()
	if v.file != nil {
		v.file.release()
	}
	if err != nil {
		x.broken = true // rebuilt by the next extension
	}
	x.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return replayFrom(ctx, x.store, st, seq, at, only)
}

// view picks the last point whose prefix is wholly within the point asked
// for, and the blocks of the enclaves asked for at that point.
func (x *asofIndex) view(seq uint64, at time.Time, only string) (asofView, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.file == nil {
		return asofView{}, errIndexClosed
	}
	i := sort.Search(len(x.points), func(i int) bool {
		if seq != 0 {
			return x.points[i].seq > seq
		}
		return x.points[i].maxTime.After(at)
	}) - 1
	if i < 0 {
		return asofView{}, nil
	}
	v := asofView{ok: true, point: x.points[i], file: x.file}
	add := func(name string, h []asofEntry) {
		j := sort.Search(len(h), func(j int) bool { return h[j].seq > v.point.seq }) - 1
		if j >= 0 && h[j].loc.n > 0 {
			v.blocks = append(v.blocks, enclaveBlock{name, h[j]})
		}
	}
	if only != "" {
		add(only, x.hist[only])
	} else {
		v.blocks = make([]enclaveBlock, 0, len(x.hist))
		for name, h := range x.hist {
			add(name, h)
		}
	}
	x.file.refs++
	return v, nil
}

// decode reads and decodes the blocks of v.
func (v asofView) decode() (*State, error) {
	if !v.ok {
		return NewState(), nil
	}
	b, err := v.file.read(v.point.global, blockGlobal, v.point.seq, "", nil)
	if err != nil {
		return nil, err
	}
	st, d := decodeGlobal(b, nil)
	if d.err != nil || len(d.b) != 0 || st.Seq != v.point.seq {
		return nil, fmt.Errorf("%w: the global block at %d does not decode: %w", errSpill, v.point.seq, d.err)
	}
	for _, eb := range v.blocks {
		if b, err = v.file.read(eb.ent.loc, blockEnclave, eb.ent.seq, eb.name, b); err != nil {
			return nil, err
		}
		if err := decodeEnclave(st, b); err != nil || st.Enclaves[eb.name] == nil {
			return nil, fmt.Errorf("%w: enclave %q at %d does not decode: %w", errSpill, eb.name, eb.ent.seq, err)
		}
	}
	return st, nil
}

// replayFrom applies to st the events after it up to the point asked for;
// with only set, only those of that enclave and outside every enclave.
func replayFrom(ctx context.Context, store *ledger.Store, st *State, seq uint64, at time.Time, only string) (*State, error) {
	st.past = true // decoded without them (encodeEnclave)
	_, err := store.Replay(ctx, st.Seq+1, func(ev ledger.Event) error {
		if (seq != 0 && ev.Seq > seq) || (seq == 0 && ev.Time.After(at)) {
			return errStop
		}
		if e := EventEnclave(ev); only == "" || e == "" || e == only {
			if err := st.Apply(ev); err != nil {
				return err
			}
		} else {
			st.Seq = ev.Seq
		}
		if ev.Seq == seq {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	clear(st.subjects)
	return st, nil
}
