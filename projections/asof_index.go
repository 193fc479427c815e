package projections

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
)

// Defaults of the time-travel index.
const (
	// DefaultTimeTravelEvery is the number of events between two encoded
	// states the index keeps at first; it doubles whenever the states
	// outgrow the budget.
	DefaultTimeTravelEvery = 2048
	// DefaultTimeTravelBudget is the most memory (bytes) the encoded
	// states take.
	DefaultTimeTravelBudget = 256 << 20
)

// asofIndex answers StateAt from the nearest encoded state at or before
// the point asked for, replaying only the events after it. It keeps the
// state (encoded, snapshot_codec.go) every `every` events of the ledger;
// when they take more than budget bytes, every second one is dropped and
// the spacing doubles, so memory stays bounded and the replay after the
// nearest state stays within `every` events. It is built on first use,
// and extended by each query to the head at that time, from the last
// state it kept: a query costs one decode and at most `every` events,
// plus the events appended since the previous query.
type asofIndex struct {
	store  *ledger.Store
	budget int

	mu     sync.Mutex // serialises extending
	points []asofPoint
	every  uint64
	bytes  int
	cur    *State    // the state at the head the index reached (nil: decode the last point)
	curMax time.Time // latest event time up to cur
}

// asofPoint is the encoded state after event seq; maxTime is the latest
// time of the events up to seq (times are almost in order, see StateAt).
type asofPoint struct {
	seq     uint64
	maxTime time.Time
	enc     []byte
}

func newAsofIndex(store *ledger.Store, every uint64, budget int) *asofIndex {
	if every == 0 {
		every = DefaultTimeTravelEvery
	}
	if budget <= 0 {
		budget = DefaultTimeTravelBudget
	}
	return &asofIndex{store: store, every: every, budget: budget}
}

// extend replays the events after the index's last state up to the
// current head, keeping a state every `every` events, and returns the
// points.
func (x *asofIndex) extend(ctx context.Context) ([]asofPoint, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	st := x.cur
	if st == nil {
		st = NewState()
		if n := len(x.points); n > 0 {
			var err error
			if st, err = decodeState(x.points[n-1].enc, nil); err != nil {
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
		if n := len(x.points); (n == 0 && ev.Seq >= x.every) || (n > 0 && ev.Seq >= x.points[n-1].seq+x.every) {
			x.add(asofPoint{seq: ev.Seq, maxTime: x.curMax, enc: encodeState(nil, st)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The state at the head is kept for the next extension only while it
	// is small next to the budget: memory stays bounded by the budget.
	if n := len(x.points); n == 0 || len(x.points[n-1].enc) <= x.budget/4 {
		x.cur = st
	}
	return x.points, nil
}

// add keeps p, thinning the points while they are over budget.
func (x *asofIndex) add(p asofPoint) {
	x.points = append(x.points, p)
	x.bytes += len(p.enc)
	for x.bytes > x.budget && len(x.points) > 1 {
		kept := make([]asofPoint, 0, len(x.points)/2+1)
		x.bytes = 0
		for i, q := range x.points {
			// Keep every second one and the newest (the next
			// extension starts from it).
			if i%2 == 1 || i == len(x.points)-1 {
				kept = append(kept, q)
				x.bytes += len(q.enc)
			}
		}
		if len(kept) == len(x.points) {
			break
		}
		x.points = kept
		x.every *= 2
	}
}

// stateAt is StateAt through the index.
func (x *asofIndex) stateAt(ctx context.Context, seq uint64, at time.Time) (*State, error) {
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
		if st, err = decodeState(points[i].enc, nil); err != nil {
			return nil, err
		}
	}
	_, err = x.store.Replay(ctx, st.Seq+1, func(ev ledger.Event) error {
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
