package projections

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/ledger/ledgertest"
)

// snapFixture is a ledger with a random history, a REK sealed under an
// HSM key, and a snapshot directory.
type snapFixture struct {
	store *ledger.Store
	w     hsm.Wrapper
	rek   *hsm.REK
	g     *gen
	dir   string
}

func newSnapFixture(t *testing.T, seed uint64, n int) *snapFixture {
	t.Helper()
	f := &snapFixture{store: ledgertest.Open(t), w: testHSM(t), g: newGen(seed), dir: t.TempDir()}
	init, rek := f.g.init(t, f.w)
	f.rek = rek
	appendAll(t, f.store, []ledger.Event{init})
	f.more(t, n)
	return f
}

// more appends n random events.
func (f *snapFixture) more(t *testing.T, n int) {
	t.Helper()
	evs := make([]ledger.Event, n)
	for i := range evs {
		evs[i] = f.g.next(t)
	}
	appendAll(t, f.store, evs)
}

func (f *snapFixture) cfg() *SnapshotConfig {
	return &SnapshotConfig{Dir: f.dir, Every: 1 << 40, Interval: -1, Unseal: UnsealWith([]hsm.Wrapper{f.w})}
}

// open opens a projection with snapshots and the REK; the caller closes it.
func (f *snapFixture) open(t *testing.T) *Projection { return f.openWith(t, false) }

// openWith is open, with the snapshot read by PreloadSnapshot if preload.
func (f *snapFixture) openWith(t *testing.T, preload bool) *Projection {
	t.Helper()
	o := Options{Snapshots: f.cfg()}
	if preload {
		o.Preloaded = PreloadSnapshot(context.Background(), o.Snapshots, nil)
	}
	p, err := OpenWith(context.Background(), f.store, f.rek, nil, o)
	if err != nil {
		t.Fatalf("OpenWith err = %v", err)
	}
	if err := p.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

// full is the state of a full replay of the ledger now.
func (f *snapFixture) full(t *testing.T) *State {
	t.Helper()
	head, err := f.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st, err := StateAt(context.Background(), f.store, head, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// snapshot writes a snapshot from a projection and returns its file.
func (f *snapFixture) snapshot(t *testing.T) string {
	t.Helper()
	p := f.open(t)
	defer p.Close()
	seq, err := p.Snapshot(context.Background())
	if err != nil || seq == 0 {
		t.Fatalf("Snapshot() = %d, %v; want a sequence", seq, err)
	}
	return filepath.Join(f.dir, snapName(seq))
}

// startsFrom opens a projection, with the snapshot read by OpenWith and
// then with the one PreloadSnapshot read, and checks the snapshot it
// started from and that its state is a full replay's.
func (f *snapFixture) startsFrom(t *testing.T, what string, want uint64) {
	t.Helper()
	for _, preload := range []bool{false, true} {
		what := fmt.Sprintf("%s (preloaded: %v)", what, preload)
		p := f.openWith(t, preload)
		if got := p.StartedFrom(); got != want {
			t.Errorf("%s: StartedFrom() = %d, want %d", what, got, want)
		}
		var got *State
		p.View(func(s *State) { got = s })
		sameState(t, what, got, f.full(t))
		p.crash()
	}
}

func TestSnapshotCodecRoundTrip(t *testing.T) {
	f := newSnapFixture(t, 1, 400)
	st := f.full(t)
	back, err := decodeState(encodeState(nil, st), nil)
	if err != nil {
		t.Fatalf("decodeState err = %v", err)
	}
	sameState(t, "round trip", st, back)
	for name, e := range st.Enclaves {
		for kn, k := range e.Keys {
			bk := back.Enclaves[name].Keys[kn]
			if len(bk.versions) != len(k.versions) || bk.pending != nil != (k.pending != nil) || bk.created != k.created {
				t.Fatalf("key %s/%s: decoded %+v, want %+v", name, kn, bk, k)
			}
		}
	}
	if _, err := decodeState(encodeState(nil, st)[:100], nil); err == nil {
		t.Error("decodeState(cut) err = nil, want an error")
	}
}

// TestSnapshotSmallEnclaveDecode: time travel decodes one enclave at a
// time; its keys are allocated in one piece sized to them, not in a
// chunk of keyCellChunk (960 KB), and still read back the same.
func TestSnapshotSmallEnclaveDecode(t *testing.T) {
	st := newSnapFixture(t, 1, 400).full(t)
	var x *Enclave
	for _, e := range st.Enclaves {
		if n := len(e.Keys); n > 0 && n < 64 && (x == nil || n > len(x.Keys)) {
			x = e
		}
	}
	if x == nil {
		t.Fatal("the history has no enclave of 1 to 63 keys")
	}
	b := encodeEnclave(nil, st, x)
	var back *State
	got := uint64(math.MaxUint64)
	for range 5 { // the least of five: the test binary's other goroutines may allocate meanwhile
		back = NewState()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := decodeEnclave(back, b); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		got = min(got, after.TotalAlloc-before.TotalAlloc)
	}
	if bound := uint64(len(b) + len(x.Keys)*1024); got > bound {
		t.Errorf("decoding an enclave of %d keys (%d bytes) allocated %d bytes, want at most %d", len(x.Keys), len(b), got, bound)
	}
	for name, k := range x.Keys {
		bk := back.Enclaves[x.Name].Keys[name]
		if bk == nil || len(bk.versions) != len(k.versions) || bk.Name != k.Name || bk.created != k.created {
			t.Fatalf("key %s: decoded %+v, want %+v", name, bk, k)
		}
	}
}

// TestSnapshotBeforeCrash: a snapshot, then more events and no clean
// shutdown: the next start loads it and replays only the events after it.
func TestSnapshotBeforeCrash(t *testing.T) {
	f := newSnapFixture(t, 2, 300)
	path := f.snapshot(t)
	f.more(t, 200)
	seq := fileSeq(t, path)
	f.startsFrom(t, "snapshot and tail", seq)
	// A clean Close writes a snapshot at the head.
	p := f.open(t)
	p.Close()
	head, _ := f.store.Head(context.Background())
	f.startsFrom(t, "after a clean close", head)
}

func fileSeq(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := readSnapHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h.Seq
}

func TestSnapshotTruncated(t *testing.T) {
	f := newSnapFixture(t, 3, 300)
	path := f.snapshot(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 5, len(snapMagic) + 2, len(snapMagic) + 40, len(b) / 2, len(b) - 17, len(b) - 1} {
		if err := os.WriteFile(path, b[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		f.startsFrom(t, "cut at "+strconv.Itoa(n), 0)
	}
	// One changed byte in the sealed state.
	c := append([]byte(nil), b...)
	c[len(c)-20] ^= 1
	if err := os.WriteFile(path, c, 0o600); err != nil {
		t.Fatal(err)
	}
	f.startsFrom(t, "changed byte", 0)
	// Bytes after the last chunk.
	if err := os.WriteFile(path, append(append([]byte(nil), b...), 0, 0, 0, 1, 7), 0o600); err != nil {
		t.Fatal(err)
	}
	f.startsFrom(t, "bytes appended", 0)
	// The file as written: used.
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f.startsFrom(t, "intact", fileSeq(t, path))
}

// rewriteHeader changes the header of a snapshot file.
func rewriteHeader(t *testing.T, path string, change func(*snapHeader)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, chunks, err := readSnapHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	change(&h)
	hj, _ := json.Marshal(h)
	out := append([]byte(h.format.magic), binary.BigEndian.AppendUint32(nil, uint32(len(hj)))...)
	out = append(append(out, hj...), chunks...)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotChainMismatch: a snapshot whose sequence or chain value was
// changed, and one of a ledger that was since replaced, are not used.
func TestSnapshotChainMismatch(t *testing.T) {
	f := newSnapFixture(t, 4, 200)
	path := f.snapshot(t)
	orig, _ := os.ReadFile(path)
	rewriteHeader(t, path, func(h *snapHeader) { h.Seq-- })
	f.startsFrom(t, "seq changed", 0)
	os.WriteFile(path, orig, 0o600)
	rewriteHeader(t, path, func(h *snapHeader) { h.Chain = strings.Repeat("0", 64) })
	f.startsFrom(t, "chain changed", 0)

	// Another ledger with as many events (same HSM, same REK sealing in
	// its first event): the snapshot's chain value is not its own.
	other := &snapFixture{store: ledgertest.Open(t), w: f.w, rek: f.rek, g: newGen(99), dir: f.dir}
	init, _ := other.g.init(t, f.w)
	appendAll(t, other.store, []ledger.Event{init})
	head, _ := f.store.Head(context.Background())
	other.more(t, int(head)-1)
	os.WriteFile(path, orig, 0o600)
	other.startsFrom(t, "ledger replaced", 0)
}

// TestSnapshotOtherREK: a snapshot sealed under another REK is not used.
func TestSnapshotOtherREK(t *testing.T) {
	f := newSnapFixture(t, 5, 200)
	_, rek2 := newGen(6).init(t, f.w)
	p, err := OpenWith(context.Background(), f.store, rek2, nil, Options{Snapshots: f.cfg()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.crash()
	f.startsFrom(t, "sealed under another REK", 0)
	// The right REK: used.
	path := f.snapshot(t)
	f.startsFrom(t, "sealed under the REK", fileSeq(t, path))
}

// crash stops p as kill -9 would: no last snapshot.
func (p *Projection) crash() {
	p.stop()
	if p.snap == nil {
		return
	}
	p.snap.once.Do(func() { close(p.snap.done) })
	p.snap.wg.Wait()
}

// openSnapshotted opens a projection whose snapshot writer runs with
// every and interval, and writes a first snapshot; it returns the
// projection (closed in t.Cleanup) and that snapshot's sequence.
func (f *snapFixture) openSnapshotted(t *testing.T, every uint64, interval time.Duration) (*Projection, uint64) {
	t.Helper()
	cfg := f.cfg()
	cfg.Every, cfg.Interval = every, interval
	p, err := OpenWith(context.Background(), f.store, f.rek, nil, Options{Snapshots: cfg})
	if err != nil {
		t.Fatalf("OpenWith err = %v", err)
	}
	t.Cleanup(p.Close)
	first, err := p.Snapshot(context.Background())
	if err != nil || first == 0 {
		t.Fatalf("Snapshot() = %d, %v; want a sequence", first, err)
	}
	return p, first
}

// TestSnapshotIntervalWaitsForATail: an Interval tick writes a snapshot
// only once Every/100 events came since the newest one. A trickle below
// that (here 5 events, 10 needed) leaves the newest snapshot as it is
// however many ticks pass; the tenth event makes the next tick write.
func TestSnapshotIntervalWaitsForATail(t *testing.T) {
	f := newSnapFixture(t, 7, 50)
	p, first := f.openSnapshotted(t, 1000, 20*time.Millisecond)
	newest := func() string {
		files := snapFiles(f.dir)
		if len(files) == 0 {
			return ""
		}
		return filepath.Base(files[0])
	}
	f.more(t, 5)
	if err := p.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p.intervalDue() {
		t.Fatalf("intervalDue() with 5 events since the snapshot = true, want false (10 needed)")
	}
	// Ten ticks and more: a tick that ignored the tail would have written.
	time.Sleep(300 * time.Millisecond)
	if got, want := newest(), snapName(first); got != want {
		t.Fatalf("after a trickle of 5 events the newest snapshot is %s, want still %s", got, want)
	}
	f.more(t, 5)
	if err := p.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !p.intervalDue() {
		t.Fatalf("intervalDue() with 10 events since the snapshot = false, want true")
	}
	var head uint64
	p.View(func(s *State) { head = s.Seq })
	deadline := time.Now().Add(20 * time.Second)
	for newest() != snapName(head) {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot at %d after the tail reached 10 events (newest %s)", head, newest())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSnapshotStaleKickWritesNothing: a kick for Every events that is
// still queued when a snapshot already took them (it was sent while that
// snapshot was written) does not write another snapshot for the few
// events after it. With a million keys that was a 70 MB snapshot, and
// seconds of CPU, for a tail of ten events.
func TestSnapshotStaleKickWritesNothing(t *testing.T) {
	f := newSnapFixture(t, 24, 50)
	p, first := f.openSnapshotted(t, 20, -1)
	f.more(t, 3)
	if err := p.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.snap.kick <- struct{}{} // the stale kick
	time.Sleep(300 * time.Millisecond)
	if files := snapFiles(f.dir); len(files) != 1 || filepath.Base(files[0]) != snapName(first) {
		t.Fatalf("snapshots after a stale kick: %v, want only %s", files, snapName(first))
	}
	// A kick with Every events behind it still writes.
	f.more(t, 20)
	if err := p.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for files := snapFiles(f.dir); fileSeq(t, files[0]) < first+20; files = snapFiles(f.dir) {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot 20 events after %d (newest %v)", first, files)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
