package projections

import (
	"context"
	"errors"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
)

// Defaults of the time-travel index.
const (
	// DefaultTimeTravelEvery is the number of events between two encoded
	// states the index keeps at first; it doubles whenever the states
	// outgrow the budget.
	DefaultTimeTravelEvery = 512
	// DefaultTimeTravelBudget is the most memory (bytes) the encoded
	// states take.
	DefaultTimeTravelBudget = 256 << 20
)

// asofIndex answers StateAt from the nearest state at or before the
// point asked for, replaying only the events after it. It keeps a state
// every `every` events of the ledger, encoded (snapshot_codec.go) enclave
// by enclave: a kept state shares the encoding of every enclave that did
// not change since the one before, so it costs what changed. When the
// kept states take more than budget bytes, every second one is dropped
// and the spacing doubles, so memory stays bounded. The index is built on
// first use and extended by each query to the head at that time. A query
// costs the decoding of the enclaves it asks for and the replay of at
// most `every` events (plus those appended since the previous query).
//
// States from the index hold no Subjects (the bookkeeping of writers on
// the live state, not a fact of the past).
type asofIndex struct {
	store  *ledger.Store
	budget int

	mu     sync.Mutex // guards everything below
	points []*asofPoint
	every  uint64
	bytes  int
	cur    *State          // the state at the head the index reached (nil: decode the last point)
	curMax time.Time       // latest event time up to cur
	dirty  map[string]bool // enclaves changed since the last point
}

// asofPoint is the state after event seq: global is what is outside the
// enclaves, enclaves the encoding of each (shared with other points
// while unchanged); maxTime is the latest time of the events up to seq
// (times are almost in order, see StateAt).
type asofPoint struct {
	seq      uint64
	maxTime  time.Time
	global   []byte
	enclaves map[string][]byte
}

func newAsofIndex(store *ledger.Store, every uint64, budget int) *asofIndex {
	if every == 0 {
		every = DefaultTimeTravelEvery
	}
	if budget <= 0 {
		budget = DefaultTimeTravelBudget
	}
	return &asofIndex{store: store, every: every, budget: budget, dirty: map[string]bool{}}
}

// decode rebuilds the state of p: every enclave, or only enclave only.
func (p *asofPoint) decode(only string) (*State, error) {
	st, d := decodeGlobal(p.global, nil)
	if d.err != nil {
		return nil, d.err
	}
	for name, b := range p.enclaves {
		if only != "" && name != only {
			continue
		}
		if err := decodeEnclave(st, b); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// EventEnclave is the enclave ev belongs to ("" for a system event):
// enclave lifecycle events carry it only in their subject.
func EventEnclave(ev ledger.Event) string {
	if ev.Enclave != "" {
		return ev.Enclave
	}
	name, _ := strings.CutPrefix(ev.Aggregate, ledger.EnclaveSubject(""))
	if name == ev.Aggregate {
		return ""
	}
	return name
}

// extend replays the events after the index's last state up to the
// current head, keeping a state every `every` events, and returns the
// points.
func (x *asofIndex) extend(ctx context.Context) ([]*asofPoint, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	st := x.cur
	if st == nil {
		st = NewState()
		if n := len(x.points); n > 0 {
			var err error
			if st, err = x.points[n-1].decode(""); err != nil {
				return nil, err
			}
			x.curMax = x.points[n-1].maxTime
		}
	}
	x.cur = nil // if this fails halfway, start again from the last point
	_, err := x.store.Replay(ctx, st.Seq+1, func(ev ledger.Event) error {
		if err := st.Apply(ev); err != nil {
			return err
		}
		if ev.Time.After(x.curMax) {
			x.curMax = ev.Time
		}
		if e := EventEnclave(ev); e != "" {
			x.dirty[e] = true
		}
		if n := len(x.points); (n == 0 && ev.Seq >= x.every) || (n > 0 && ev.Seq >= x.points[n-1].seq+x.every) {
			x.add(x.point(st))
		}
		return nil
	})
	if err != nil {
		x.dirty = map[string]bool{}
		return nil, err
	}
	st.Subjects = map[string]uint64{} // not kept: see asofIndex
	// The state at the head is kept for the next extension only while it
	// is small next to the budget: memory stays bounded by the budget.
	if n := len(x.points); n == 0 || x.points[n-1].size() <= x.budget/4 {
		x.cur = st
	}
	return x.points, nil
}

// point encodes st, sharing the enclaves that did not change since the
// last point.
func (x *asofIndex) point(st *State) *asofPoint {
	p := &asofPoint{seq: st.Seq, maxTime: x.curMax, global: encodeGlobal(nil, st), enclaves: map[string][]byte{}}
	if n := len(x.points); n > 0 {
		p.enclaves = maps.Clone(x.points[n-1].enclaves)
	}
	for name := range x.dirty {
		if e := st.Enclaves[name]; e != nil {
			p.enclaves[name] = encodeEnclave(nil, st, e)
		} else {
			delete(p.enclaves, name)
		}
	}
	clear(x.dirty)
	clear(st.Subjects) // not kept: see asofIndex
	return p
}

// size is what p takes on its own, sharing nothing.
func (p *asofPoint) size() int {
	n := len(p.global) + 48*len(p.enclaves)
	for _, b := range p.enclaves {
		n += len(b)
	}
	return n
}

// add keeps p, thinning the points while they are over budget.
func (x *asofIndex) add(p *asofPoint) {
	x.points = append(x.points, p)
	x.recount()
	for x.bytes > x.budget && len(x.points) > 1 {
		kept := make([]*asofPoint, 0, len(x.points)/2+1)
		for i, q := range x.points {
			// Keep every second one and the newest (the next
			// extension starts from it).
			if i%2 == 1 || i == len(x.points)-1 {
				kept = append(kept, q)
			}
		}
		x.points = kept
		x.every *= 2
		x.recount()
	}
}

// recount sets x.bytes to what the points take, counting a shared
// encoding once.
func (x *asofIndex) recount() {
	seen := map[*byte]bool{}
	x.bytes = 0
	for _, p := range x.points {
		x.bytes += len(p.global) + 48*len(p.enclaves)
		for _, b := range p.enclaves {
			if len(b) > 0 && !seen[&b[0]] {
				seen[&b[0]] = true
				x.bytes += len(b)
			}
		}
	}
}

// stateAt is StateAt through the index; with only set, the state holds
// only that enclave (and what is outside every enclave).
func (x *asofIndex) stateAt(ctx context.Context, seq uint64, at time.Time, only string) (*State, error) {
	points, err := x.extend(ctx)
	if err != nil {
		return nil, err
	}
	// The last point whose prefix is wholly within the point asked for.
	i := sort.Search(len(points), func(i int) bool {
		if seq != 0 {
			return points[i].seq > seq
		}
		return points[i].maxTime.After(at)
	}) - 1
	st := NewState()
	if i >= 0 {
		if st, err = points[i].decode(only); err != nil {
			return nil, err
		}
	}
	_, err = x.store.Replay(ctx, st.Seq+1, func(ev ledger.Event) error {
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
	st.Subjects = map[string]uint64{}
	return st, nil
}
