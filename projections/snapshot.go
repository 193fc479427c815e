package projections

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
)

// Defaults of SnapshotConfig.
const (
	DefaultSnapshotEvery    = 20_000
	DefaultSnapshotInterval = 5 * time.Minute
	DefaultSnapshotKeep     = 1
)

// SnapshotConfig makes a Projection keep sealed snapshots of its state on
// local disk, so that it starts from the newest one and replays only the
// events after it (the tail) instead of the whole ledger.
//
// A snapshot is written after Every new events, or Interval after the
// last one if at least Every/100 events came since (intervalTail), and
// by Close; one at a time, in the background, never while the REK is not
// unsealed, and after a pause of nine times as long as the last one took
// (so that about a tenth of the time goes to snapshots of a large state),
// but for the first delta over a new full snapshot (pacing).
// The state is encoded and compressed under the read lock (writers wait
// for it: about 3 s per million keys, BenchmarkSnapshotWrite), then
// sealed and written without it. After the first full snapshot, a
// snapshot is a delta of the changes since it while fewer than half of
// the keys changed (snapshot_delta.go). It is sealed under a data key
// sealed under the REK, records the sequence it reflects and that
// sequence's hash-chain value, and is written atomically (a temporary
// file, synced, renamed, and the directory synced). The Keep newest full
// snapshots are kept, each with its newest delta.
//
// At Open, the newest snapshot that opens under the REK (Unseal), decodes,
// and whose chain value is still the ledger's at its sequence is loaded;
// the tail is then replayed with every hash-chain link checked, from the
// snapshot's chain value to the head. PreloadSnapshot does the opening
// and decoding while the ledger opens (snapshot_preload.go). Any failure (a missing, cut, changed
// or foreign snapshot, another ledger at that sequence, a tail that does
// not link) is logged and falls back to the next snapshot, and at last to
// a full replay: never to a state a full replay would not give.
type SnapshotConfig struct {
	Dir      string        // where the snapshot files are kept (created if missing)
	Every    uint64        // events between two snapshots (0: DefaultSnapshotEvery)
	Interval time.Duration // longest time a tail of Every/100 events waits for a snapshot (0: DefaultSnapshotInterval; < 0: only by events)
	Keep     int           // full snapshots kept, each with its newest delta (0: DefaultSnapshotKeep)
	// Unseal opens the REK from the sealings of a snapshot's header (HSM
	// key id -> sealed REK) before the projection has any state; nil
	// unseals nothing, so no snapshot is loaded.
	Unseal func(ctx context.Context, sealings map[string][]byte) (*hsm.REK, error)
}

func (c SnapshotConfig) every() uint64 {
	if c.Every == 0 {
		return DefaultSnapshotEvery
	}
	return c.Every
}

// intervalTail is how many events must have come since the newest
// snapshot for Interval to write another: a hundredth of Every, at least
// one. A trickle of events (a checkpoint a minute while requests are
// audited) otherwise rewrote the whole state every Interval: with a
// million keys about 280 MB to encode, seconds of CPU and a second of writers
// waiting for the encoding, each time for a tail that replays in
// milliseconds.
func (c SnapshotConfig) intervalTail() uint64 { return max(1, c.every()/100) }

// intervalDue reports whether enough events came since the newest
// snapshot for an Interval tick to write one.
func (p *Projection) intervalDue() bool { return p.snapDue(p.snap.cfg.intervalTail()) }

// snapDue reports whether at least n events came since the newest
// snapshot.
func (p *Projection) snapDue(n uint64) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.snapDueLocked(n)
}

// snapDueLocked is snapDue under p.mu.
func (p *Projection) snapDueLocked(n uint64) bool {
	seq, last := p.st.Seq, p.snap.lastSeq
	return seq > last && seq-last >= n
}

func (c SnapshotConfig) keep() int {
	if c.Keep <= 0 {
		return DefaultSnapshotKeep
	}
	return c.Keep
}

// snapshotter is the snapshot side of a Projection.
type snapshotter struct {
	cfg  SnapshotConfig
	kick chan struct{} // asks the writer for a snapshot now
	done chan struct{} // closed to stop the writer
	wg   sync.WaitGroup
	once sync.Once // closes done

	mu      sync.Mutex // serialises writes
	lastSeq uint64     // sequence of the newest snapshot on disk (under Projection.mu for reads in apply)
	base    *snapBase  // the newest full snapshot this process wrote, which deltas are based on; under mu
}

const snapPrefix, snapSuffix = "projection-", ".snap"

func snapName(seq uint64) string { return fmt.Sprintf("%s%020d%s", snapPrefix, seq, snapSuffix) }

// deltaName is the name of a delta at seq based on the snapshot at base.
func deltaName(seq, base uint64) string {
	return fmt.Sprintf("%s%020d%s%020d%s", snapPrefix, seq, deltaInfix, base, snapSuffix)
}

const deltaInfix = ".from-"

// snapFiles lists the snapshot files of dir (deltas too), newest first.
func snapFiles(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if _, _, ok := parseSnapName(e.Name()); ok {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

// parseSnapName reads a snapshot file's name: snapName(seq), or
// deltaName(seq, base) with base > 0.
func parseSnapName(name string) (seq, base uint64, ok bool) {
	num, ok := strings.CutPrefix(name, snapPrefix)
	if !ok || !strings.HasSuffix(num, snapSuffix) {
		return 0, 0, false
	}
	num, from, delta := strings.Cut(strings.TrimSuffix(num, snapSuffix), deltaInfix)
	seq, err := strconv.ParseUint(num, 10, 64)
	if err != nil || len(num) != 20 {
		return 0, 0, false
	}
	if delta {
		if base, err = strconv.ParseUint(from, 10, 64); err != nil || len(from) != 20 || base == 0 || base >= seq {
			return 0, 0, false
		}
	}
	return seq, base, true
}

// loadSnapshot returns the state of the newest usable snapshot and its
// chain value, or nil if none is usable (each failure is logged). pre,
// if set, is the newest snapshot that opened and decoded, read while the
// ledger opened: only its chain value is left to check, and the older
// files are read if it does not match.
func (p *Projection) loadSnapshot(ctx context.Context, pre *Preload) (*State, ledger.Sum) {
	cfg := p.snap.cfg
	if cfg.Unseal == nil {
		return nil, ledger.Sum{}
	}
	files := snapFiles(cfg.Dir)
	if pre != nil && pre.dir == cfg.Dir {
		path, st, h, ok := pre.wait(ctx)
		if ok && st == nil {
			return nil, ledger.Sum{} // every file was tried, and the failures logged
		}
		if ok {
			st.setDropped(p.cache.drop)
			sum, err := p.checkChain(ctx, h)
			if err == nil {
				p.log.Info("projection snapshot loaded", "file", path, "seq", st.Seq, "read in", pre.took)
				return st, sum
			}
			p.log.Warn("projection snapshot not used", "file", path, "err", err)
			files = files[slices.Index(files, path)+1:] // the older ones (all if it is gone)
		}
	}
	for _, path := range files {
		st, sum, err := p.loadFile(ctx, path)
		if err == nil {
			p.log.Info("projection snapshot loaded", "file", path, "seq", st.Seq)
			return st, sum
		}
		p.log.Warn("projection snapshot not used", "file", path, "err", err)
	}
	return nil, ledger.Sum{}
}

// loadFile opens, checks and decodes one snapshot file.
func (p *Projection) loadFile(ctx context.Context, path string) (*State, ledger.Sum, error) {
	st, h, err := readSnapshot(ctx, path, p.snap.cfg.Unseal, p.cache.drop, nil)
	if err != nil {
		return nil, ledger.Sum{}, err
	}
	sum, err := p.checkChain(ctx, h)
	if err != nil {
		return nil, ledger.Sum{}, err
	}
	return st, sum, nil
}

// checkChain returns the ledger's chain value at the sequence of the
// snapshot with header h, and an error unless it is the snapshot's: the
// ledger still holds, up to that sequence, the history the snapshot was
// made from.
func (p *Projection) checkChain(ctx context.Context, h *snapHeader) (ledger.Sum, error) {
	sum, err := p.store.ChainAt(ctx, h.Seq)
	if err != nil {
		return ledger.Sum{}, fmt.Errorf("%w: the ledger at %d: %w", errSnapshot, h.Seq, err)
	}
	if sum.String() != h.Chain {
		return ledger.Sum{}, fmt.Errorf("%w: the ledger's chain at %d is not the snapshot's (the ledger was changed or replaced)", errSnapshot, h.Seq)
	}
	return sum, nil
}

// readSnapshot opens and decodes one snapshot file with the REK unseal
// opens from its header, and checks that the state is the one the header
// describes; the caller still checks the header's chain value against
// the ledger. dropped is the state's State.dropped; grow (nil: none) is
// room for what a delta over it adds.
func readSnapshot(ctx context.Context, path string, unseal func(context.Context, map[string][]byte) (*hsm.REK, error),
	dropped func(*Version), grow *growth) (*State, *snapHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	h, hlen, err := readHeader(r)
	if err != nil {
		return nil, nil, err
	}
	sealings := map[string][]byte{}
	for _, s := range h.Sealings {
		sealings[s.KeyID] = s.SealedREK
	}
	rek, err := unseal(ctx, sealings)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: no configured HSM unseals its REK: %w", errSnapshot, err)
	}
	chunks, err := openSnapshot(&h, r, rek, fi.Size()-hlen)
	if err != nil {
		return nil, nil, err
	}
	defer chunks.close()
	next := func() ([]byte, int64, error) {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		return chunks.next()
	}
	var st *State
	if h.format.delta {
		st, err = readDelta(ctx, path, &h, next, unseal, dropped) // records the delta's changes since its base
	} else if st, err = decodeChunks(next, dropped, grow); err == nil && h.format == snapV3 {
		st.track() // deltas over it from now on (not over an older format)
		st.deltaBase = &snapBase{Seq: h.Seq, Chain: h.Chain}
	}
	if err != nil {
		return nil, nil, err
	}
	if st.Seq != h.Seq {
		return nil, nil, fmt.Errorf("%w: state at %d, header says %d", errSnapshot, st.Seq, h.Seq)
	}
	for _, s := range h.Sealings {
		if x := st.HSMs[s.KeyID]; x == nil || !slices.Equal(x.SealedREK, s.SealedREK) {
			return nil, nil, fmt.Errorf("%w: header sealing %s is not the state's", errSnapshot, s.KeyID)
		}
	}
	return st, &h, nil
}

// replay builds the state at Open: from the newest usable snapshot and
// the chained tail, or else from the whole ledger. It returns the last
// sequence replayed.
func (p *Projection) replay(ctx context.Context, pre *Preload) (uint64, error) {
	full := func() (uint64, error) {
		p.st = NewState()
		p.st.dropped = p.cache.drop
		return p.store.Replay(ctx, 1, func(ev ledger.Event) error { return p.st.Apply(ev) })
	}
	if p.snap == nil {
		return full()
	}
	st, sum := p.loadSnapshot(ctx, pre)
	if st == nil {
		p.log.Info("projection: no usable snapshot, replaying the whole ledger")
		return full()
	}
	p.st = st
	from := st.Seq
	p.snap.lastSeq = from
	last, _, err := p.store.ReplayChained(ctx, from+1, sum, func(ev ledger.Event) error { return p.st.Apply(ev) })
	if err != nil {
		p.log.Error("projection: the events after the snapshot do not replay or link to it, replaying the whole ledger", "seq", from, "err", err)
		p.snap.lastSeq = 0
		return full()
	}
	p.startedFrom = from
	p.snap.base = st.deltaBase // the next snapshot may be a delta over it
	p.log.Info("projection: replayed the events after the snapshot", "snapshot", from, "events", last-from)
	return max(last, from), nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// noteApplied asks for a snapshot once enough events were applied since
// the last one; under p.mu.
func (p *Projection) noteApplied() {
	if s := p.snap; s != nil && p.snapDueLocked(s.cfg.every()) {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// Snapshot writes a snapshot of the current state now, unless the newest
// one already reflects it; it returns the sequence of the newest snapshot.
// It fails with ErrSealed until the REK is unsealed.
func (p *Projection) Snapshot(ctx context.Context) (uint64, error) {
	seq, _, err := p.snapshot(ctx)
	return seq, err
}

// snapshot is Snapshot; kind is what it wrote (wroteNone, wroteFull or
// wroteDelta).
func (p *Projection) snapshot(ctx context.Context) (_ uint64, kind snapKind, _ error) {
	s := p.snap
	if s == nil {
		return 0, wroteNone, errors.New("projections: snapshots are not configured")
	}
	rek := p.rek.Load()
	if rek == nil {
		return 0, wroteNone, ErrSealed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.mu.RLock()
	seq, last := p.st.Seq, s.lastSeq
	if p.err != nil {
		p.mu.RUnlock()
		return last, wroteNone, fmt.Errorf("projections: no snapshot of a stopped projection: %w", p.err)
	}
	var (
		pieces [][]byte
		err    error
		h      = snapHeader{Seq: seq}
		format *snapFormat
	)
	if seq > last {
		pieces, format, err = s.encode(p.st, &h)
		for _, id := range slices.Sorted(maps.Keys(p.st.HSMs)) {
			h.Sealings = append(h.Sealings, snapSealing{KeyID: id, SealedREK: p.st.HSMs[id].SealedREK})
		}
	}
	p.mu.RUnlock()
	if seq <= last || err != nil {
		return last, wroteNone, err
	}
	sum, err := p.store.ChainAt(ctx, seq)
	if err != nil {
		return last, wroteNone, err
	}
	h.Chain = chainHex(sum)
	if err := os.MkdirAll(s.cfg.Dir, 0o700); err != nil {
		return last, wroteNone, err
	}
	name := snapName(seq)
	if format.delta {
		name = deltaName(seq, h.Base.Seq)
	}
	write := func(w io.Writer) error { return sealPieces(w, format, h, pieces, rek) }
	if err := writeFileAtomic(filepath.Join(s.cfg.Dir, name), write); err != nil {
		return last, wroteNone, fmt.Errorf("projections: write snapshot: %w", err)
	}
	kind = wroteDelta
	if !format.delta {
		s.base, kind = &snapBase{Seq: seq, Chain: h.Chain}, wroteFull
	}
	p.mu.Lock()
	s.lastSeq = seq
	p.mu.Unlock()
	var keepBase uint64
	if s.base != nil {
		keepBase = s.base.Seq
	}
	pruneSnapshots(s.cfg.Dir, s.cfg.keep(), keepBase)
	p.log.Debug("projection snapshot written", "seq", seq, "state bytes", h.Size)
	return seq, kind, nil
}

// closeSnapshots stops the writer and writes a last snapshot.
func (p *Projection) closeSnapshots() {
	s := p.snap
	if s == nil {
		return
	}
	stopped := false
	s.once.Do(func() { close(s.done); stopped = true })
	if !stopped {
		return
	}
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := p.Snapshot(ctx); err != nil && !errors.Is(err, ErrSealed) {
		p.log.Error("projection snapshot at close", "err", err)
	}
}

// UnsealWith returns a SnapshotConfig.Unseal that opens the REK with the
// first of ws whose key id has a sealing.
func UnsealWith(ws []hsm.Wrapper) func(ctx context.Context, sealings map[string][]byte) (*hsm.REK, error) {
	return func(ctx context.Context, sealings map[string][]byte) (*hsm.REK, error) {
		var errs []error
		for _, w := range ws {
			if sealed, ok := sealings[w.KeyID()]; ok {
				rek, err := hsm.OpenREK(ctx, w, sealed)
				if err == nil {
					return rek, nil
				}
				errs = append(errs, err)
			}
		}
		if len(errs) == 0 {
			return nil, errors.New("projections: the snapshot is sealed under none of the configured HSMs")
		}
		return nil, errors.Join(errs...)
	}
}

// StartedFrom returns the sequence of the snapshot the projection started
// from, or 0 if it replayed the whole ledger.
func (p *Projection) StartedFrom() uint64 { return p.startedFrom }
