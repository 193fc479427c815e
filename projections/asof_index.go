package projections

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
)

// Defaults of the time-travel index.
const (
	// DefaultTimeTravelEvery is the number of events between two states
	// the index keeps at first; it doubles whenever they outgrow a budget.
	DefaultTimeTravelEvery = 512
	// DefaultTimeTravelBudget is the most memory (bytes) the index takes:
	// half for where its states are on disk, half for the part of the
	// state at the head it keeps decoded to extend them.
	DefaultTimeTravelBudget = 64 << 20
	// DefaultTimeTravelDisk is the most bytes its spill file takes.
	DefaultTimeTravelDisk = 4 << 30
)

// asofIndex answers StateAt from the nearest state at or before the
// point asked for, replaying only the events after it. It keeps a state
// every `every` events of the ledger (a point), encoded enclave by enclave
// (snapshot_codec.go) in a spill file on disk (asof_spill.go): a point
// writes only the enclaves that changed since the one before, and RAM
// holds, per enclave, the short history of where its blocks are, plus
// the list of points. When RAM or the file outgrows its budget, every
// second point is dropped and the spacing doubles (asof_fit.go), so both
// stay bounded. The index is built on first use and extended by each
// query to the head at that time.
//
// A query for one enclave reads that enclave's block and the point's
// global block; one for the whole state reads every enclave's; then it
// replays at most `every` events (plus those appended since the previous
// query). A block that does not read back as written is never used: the
// query is answered by a full replay and the index rebuilt.
//
// States from the index hold no subject sequences (the bookkeeping of
// writers on the live state, not a fact of the past).
type asofIndex struct {
	store *ledger.Store
	log   *slog.Logger
	cfg   asofConfig

	mu      sync.Mutex // guards everything below
	file    *spillFile // nil until first use or after a failure
	points  []asofPoint
	hist    map[string][]asofEntry // per enclave, oldest first
	entries int                    // entries in hist
	live    int64                  // bytes of the blocks in use in file
	every   uint64
	broken  bool // a block did not read back: rebuild
	closed  bool

	// The state at the head the index reached: the global part, and the
	// enclaves in loaded (an enclave not there is as its last block says).
	cur        *State
	curMax     time.Time         // latest event time up to cur
	loaded     map[string]uint64 // enclave -> seq of its last event (absent from cur: it does not exist)
	dirty      map[string]bool   // enclaves changed since the last point (all loaded)
	lastGlobal []byte            // the global part at the last point
}

// asofConfig tunes an index (Options).
type asofConfig struct {
	every  uint64
	budget int    // RAM (bytes): half for the points and histories, half for cur
	disk   int64  // bytes of the spill file
	dir    string // where the spill file is created ("": os.TempDir())
}

// asofPoint is the state after event seq: its global part is the block at
// global, each enclave the last entry of its history at or before seq;
// maxTime is the latest time of the events up to seq (times are almost in
// order, see StateAt).
type asofPoint struct {
	seq     uint64
	maxTime time.Time
	global  asofLoc
}

// asofEntry is an enclave's state from point seq on, until its next
// entry; an empty loc is an enclave that does not exist.
type asofEntry struct {
	seq uint64
	loc asofLoc
}

func newAsofIndex(store *ledger.Store, log *slog.Logger, cfg asofConfig) *asofIndex {
	if cfg.every == 0 {
		cfg.every = DefaultTimeTravelEvery
	}
	if cfg.budget <= 0 {
		cfg.budget = DefaultTimeTravelBudget
	}
	if cfg.disk <= 0 {
		cfg.disk = DefaultTimeTravelDisk
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &asofIndex{store: store, log: log, cfg: cfg}
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

// reset empties the index onto a new spill file.
func (x *asofIndex) reset() error {
	x.file.retire()
	x.file = nil
	x.points, x.hist, x.entries, x.live, x.every = nil, map[string][]asofEntry{}, 0, 0, x.cfg.every
	x.cur, x.curMax, x.loaded, x.dirty, x.lastGlobal = NewState(), time.Time{}, map[string]uint64{}, map[string]bool{}, nil
	x.broken = false
	f, err := createSpill(x.cfg.dir)
	if err != nil {
		return err
	}
	x.file = f
	return nil
}

// rewind sets cur back to the last point, after a failed extension.
func (x *asofIndex) rewind() {
	x.cur, x.curMax = NewState(), time.Time{}
	if n := len(x.points); n > 0 {
		st, d := decodeGlobal(x.lastGlobal, nil)
		if d.err != nil {
			x.broken = true // cannot happen: it was encoded in this process
			return
		}
		x.cur, x.curMax = st, x.points[n-1].maxTime
	}
	x.loaded, x.dirty = map[string]uint64{}, map[string]bool{}
}

// close drops the spill file; later queries replay the ledger.
func (x *asofIndex) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.closed = true
	x.file.retire()
	x.file = nil
}

// extend replays the events after the index's head up to the current
// head, keeping a state every `every` events. A failure of the spill file
// rebuilds the index once.
func (x *asofIndex) extend(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return errIndexClosed
	}
	if x.file == nil || x.broken {
		if err := x.reset(); err != nil {
			return err
		}
	}
	err := x.replayTail(ctx)
	if isSpill(err) {
		x.log.Warn("time travel: rebuilding the index", "err", err)
		if err = x.reset(); err == nil {
			err = x.replayTail(ctx)
		}
	}
	if err != nil {
		x.rewind()
	}
	return err
}

// replayTail applies the events after cur to it, loading each enclave
// they touch from its last block first, and adds the points due.
func (x *asofIndex) replayTail(ctx context.Context) error {
	_, err := x.store.Replay(ctx, x.cur.Seq+1, func(ev ledger.Event) error {
		if e := EventEnclave(ev); e != "" {
			if err := x.load(e); err != nil {
				return err
			}
			x.dirty[e] = true
			x.loaded[e] = ev.Seq
		}
		if err := x.cur.Apply(ev); err != nil {
			return err
		}
		if ev.Time.After(x.curMax) {
			x.curMax = ev.Time
		}
		if n := len(x.points); (n == 0 && ev.Seq >= x.every) || (n > 0 && ev.Seq >= x.points[n-1].seq+x.every) {
			return x.addPoint()
		}
		return nil
	})
	clear(x.cur.subjects) // not kept: see asofIndex
	return err
}

// load puts enclave e, as its last block says, into cur unless it is
// there already.
func (x *asofIndex) load(e string) error {
	if _, ok := x.loaded[e]; ok {
		return nil
	}
	h := x.hist[e]
	if n := len(h); n > 0 && h[n-1].loc.n > 0 {
		b, err := x.file.read(h[n-1].loc, blockEnclave, h[n-1].seq, e, nil)
		if err != nil {
			return err
		}
		if err := decodeEnclave(x.cur, b); err != nil || x.cur.Enclaves[e] == nil {
			return fmt.Errorf("%w: enclave %q at %d: %w", errSpill, e, h[n-1].seq, err)
		}
	}
	x.loaded[e] = x.cur.Seq
	return nil
}

// addPoint writes a point at cur: its global part and each enclave
// changed since the last point; then fits the index in its budgets.
func (x *asofIndex) addPoint() error {
	st := x.cur
	g := encodeGlobal(newBlock(), st)
	loc, err := x.file.append(blockGlobal, st.Seq, "", g)
	if err != nil {
		return err
	}
	x.live += int64(len(g))
	x.lastGlobal = append(x.lastGlobal[:0], g[blockHeader:]...)
	for e := range x.dirty {
		if err := x.addEntry(e); err != nil {
			return err
		}
	}
	clear(x.dirty)
	clear(st.subjects) // not kept: see asofIndex
	x.points = append(x.points, asofPoint{seq: st.Seq, maxTime: x.curMax, global: loc})
	return x.fit()
}

// addEntry writes enclave e as cur has it, or records that it no longer
// exists.
func (x *asofIndex) addEntry(e string) error {
	h := x.hist[e]
	ent := asofEntry{seq: x.cur.Seq}
	if en := x.cur.Enclaves[e]; en != nil {
		b := encodeEnclave(newBlock(), x.cur, en)
		loc, err := x.file.append(blockEnclave, ent.seq, e, b)
		if err != nil {
			return err
		}
		ent.loc = loc
		x.live += int64(len(b))
	} else if n := len(h); n == 0 || h[n-1].loc.n == 0 {
		return nil // did not exist at the last point either
	}
	x.hist[e] = append(h, ent)
	x.entries++
	return nil
}
