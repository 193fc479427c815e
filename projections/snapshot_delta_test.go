package projections

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/kmsledger/kmsledger/ledger"
)

// deltaHistory is a random history of n events after system.initialized,
// numbered from 1 as the ledger would.
func deltaHistory(t *testing.T, seed uint64, n int) (*gen, []ledger.Event) {
	g := newGen(seed)
	init, _ := g.init(t, testHSM(t))
	evs := []ledger.Event{init}
	for range n {
		evs = append(evs, g.next(t))
	}
	return g, evs
}

// applyFrom applies evs to st, numbering them from seq+1.
func applyFrom(t *testing.T, st *State, seq uint64, evs []ledger.Event) {
	t.Helper()
	for i, ev := range evs {
		ev.Seq = seq + uint64(i) + 1
		if err := st.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
}

// plainPieces turns compressed pieces back into what decodeChunks reads.
func plainPieces(t *testing.T, pieces [][]byte) func() ([]byte, int64, error) {
	t.Helper()
	z, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(z.Close)
	var plain [][]byte
	left := int64(0)
	for _, c := range pieces {
		_, k := binary.Uvarint(c)
		b, err := z.DecodeAll(c[k:], nil)
		if err != nil {
			t.Fatal(err)
		}
		plain = append(plain, b)
		left += int64(len(b))
	}
	return func() ([]byte, int64, error) {
		if len(plain) == 0 {
			return nil, 0, io.EOF
		}
		b := plain[0]
		plain, left = plain[1:], left-int64(len(b))
		return b, left, nil
	}
}

// TestSnapshotDeltaHistories: over random histories (every event type,
// enclaves deleted and created again since the base), a full snapshot
// taken at one point and a delta taken at a later one, merged, give the
// state the history gives at the later point, for small and large
// chunks; the delta holds only the keys changed since the base.
func TestSnapshotDeltaHistories(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		g, evs := deltaHistory(t, seed, 1200)
		rng := mrand.New(mrand.NewPCG(seed, 7))
		a := 1 + rng.IntN(len(evs)-1)
		b := a + rng.IntN(len(evs)-a+1)
		tail := slices.Clone(evs[a:b])
		if e := pick(g, g.enclaves); seed%3 != 0 {
			tail = append(tail, g.ev(t, ledger.TypeEnclaveDeleted, "", ledger.EnclaveSubject(e), ledger.EnclaveDeleted{Name: e}))
			if seed%3 == 1 {
				tail = append(tail, g.ev(t, ledger.TypeEnclaveCreated, "", ledger.EnclaveSubject(e), ledger.EnclaveCreated{Name: e}))
			}
		}
		st := NewState()
		applyFrom(t, st, 0, evs[:a])
		baseBytes := encodeState(nil, st)
		st.track()
		applyFrom(t, st, uint64(a), tail)
		want := NewState()
		applyFrom(t, want, 0, evs[:a])
		applyFrom(t, want, uint64(a), tail)
		for _, chunk := range []int{64, snapChunk} {
			pieces, size, err := compressDelta(st, uint64(a), chunk)
			if err != nil {
				t.Fatal(err)
			}
			ds, info, err := decodeDelta(plainPieces(t, pieces), nil)
			if err != nil {
				t.Fatalf("seed %d: decodeDelta err = %v", seed, err)
			}
			if full := len(encodeState(nil, st)); b-a < 50 && size*2 > uint64(full) {
				t.Errorf("seed %d: a delta of %d events is %d bytes, the state %d", seed, b-a, size, full)
			}
			base, err := decodeState(baseBytes, nil)
			if err != nil {
				t.Fatal(err)
			}
			merged, err := mergeDelta(base, ds, info)
			if err != nil {
				t.Fatalf("seed %d: mergeDelta err = %v", seed, err)
			}
			sameState(t, fmt.Sprintf("seed %d, base after %d events, delta after %d (chunk %d)", seed, a, b, chunk), want, merged)
		}
	}
}

// TestSnapshotDeltaFiles: a projection writes a full snapshot, then
// deltas based on it while few keys change, each replacing the one
// before; it starts from the newest delta and its base (read by OpenWith
// and by PreloadSnapshot) to the state of a full replay. Started from a
// delta or from a full snapshot, it goes on writing deltas over the same
// base.
func TestSnapshotDeltaFiles(t *testing.T) {
	f := newSnapFixture(t, 41, 1500)
	p := f.open(t)
	ctx := context.Background()
	base, err := p.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	for range 3 {
		f.more(t, 20)
		if err := p.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		if seq, err = p.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	want := []string{filepath.Join(f.dir, deltaName(seq, base)), filepath.Join(f.dir, snapName(base))}
	if got := snapFiles(f.dir); !slices.Equal(got, want) {
		t.Fatalf("snapshot files %v, want %v", got, want)
	}
	f.startsFrom(t, "from a delta", seq)

	// Started from the delta, the next snapshot is a delta over the same
	// base, holding the first delta's changes and the new ones.
	next := f.snapshotAfter(t, 20)
	if want := filepath.Join(f.dir, deltaName(next, base)); next <= seq || !slices.Contains(snapFiles(f.dir), want) {
		t.Fatalf("after a start from a delta: files %v, want %s", snapFiles(f.dir), want)
	}
	f.startsFrom(t, "from the delta written after a start from a delta", next)

	// Started from the full snapshot alone, the same.
	os.Remove(filepath.Join(f.dir, deltaName(next, base)))
	again := f.snapshotAfter(t, 20)
	if want := filepath.Join(f.dir, deltaName(again, base)); !slices.Contains(snapFiles(f.dir), want) {
		t.Fatalf("after a start from a full snapshot: files %v, want %s", snapFiles(f.dir), want)
	}
	f.startsFrom(t, "from the delta written after a start from a full snapshot", again)
}

// snapshotAfter starts a projection from the snapshots, appends n events,
// and writes a snapshot of them; it returns its sequence.
func (f *snapFixture) snapshotAfter(t *testing.T, n int) uint64 {
	t.Helper()
	p := f.open(t)
	defer p.crash()
	f.more(t, n)
	if err := p.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	seq, err := p.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// TestSnapshotDeltaHostile: a delta whose base is gone, whose base was
// replaced by another snapshot, whose header names another base, that
// was cut short, or that was relabelled as a full snapshot is not used: the projection
// starts from the next usable file, and at last from a full replay,
// always to the state of a full replay.
func TestSnapshotDeltaHostile(t *testing.T) {
	f := newSnapFixture(t, 43, 1500)
	p := f.open(t)
	ctx := context.Background()
	base, _ := p.Snapshot(ctx)
	f.more(t, 20)
	p.CatchUp(ctx)
	seq, _ := p.Snapshot(ctx)
	p.Close()
	delta, full := filepath.Join(f.dir, deltaName(seq, base)), filepath.Join(f.dir, snapName(base))
	if _, err := os.Stat(delta); err != nil {
		t.Fatalf("no delta written: %v", err)
	}
	keep := func(path string) func() {
		b, _ := os.ReadFile(path)
		return func() { os.WriteFile(path, b, 0o600) }
	}
	restoreDelta, restoreFull := keep(delta), keep(full)

	rewriteHeader(t, delta, func(h *snapHeader) { h.Base.Chain = h.Chain })
	f.startsFrom(t, "a delta naming another base", base)
	restoreDelta()

	b, _ := os.ReadFile(delta)
	os.WriteFile(delta, b[:len(b)*2/3], 0o600)
	f.startsFrom(t, "a delta cut short", base)
	restoreDelta()

	b, _ = os.ReadFile(delta)
	relabelled := filepath.Join(f.dir, snapName(seq))
	os.WriteFile(relabelled, append([]byte(snapV3.magic), b[len(snapDelta.magic):]...), 0o600)
	os.Remove(delta)
	f.startsFrom(t, "a delta relabelled as a full snapshot", base)
	os.Remove(relabelled)
	restoreDelta()

	os.Rename(full, full+".gone")
	f.startsFrom(t, "a delta without its base", 0)
	os.Rename(full+".gone", full)

	// A base whose header was changed: the delta's header names another
	// chain value, and the ledger has another at that sequence.
	rewriteHeader(t, full, func(h *snapHeader) { h.Chain = otherHex(h.Chain) })
	f.startsFrom(t, "a delta over a changed base", 0)
	restoreFull()
	f.startsFrom(t, "restored", seq)
}

// TestPruneSnapshots: pruning keeps the keep newest full snapshots and,
// of the deltas based on each, the newest, and the base of the deltas
// being written whatever its age.
func TestPruneSnapshots(t *testing.T) {
	dir := t.TempDir()
	names := []string{snapName(10), deltaName(20, 10), deltaName(30, 10), snapName(40), deltaName(50, 40),
		deltaName(60, 40), snapName(70), deltaName(80, 70)}
	for _, n := range names {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
	}
	os.WriteFile(filepath.Join(dir, "projection-1.from-2.snap"), nil, 0o600) // not ours: left alone
	pruneSnapshots(dir, 2, 0)
	var got []string
	for _, p := range snapFiles(dir) {
		got = append(got, filepath.Base(p))
	}
	want := []string{deltaName(80, 70), snapName(70), deltaName(60, 40), snapName(40)}
	if !slices.Equal(got, want) {
		t.Errorf("after pruning: %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "projection-1.from-2.snap")); err != nil {
		t.Errorf("a file not named as a snapshot was removed: %v", err)
	}
	// The base of the deltas being written stays, however old.
	os.WriteFile(filepath.Join(dir, snapName(10)), nil, 0o600)
	pruneSnapshots(dir, 1, 10)
	got = got[:0]
	for _, p := range snapFiles(dir) {
		got = append(got, filepath.Base(p))
	}
	if want := []string{deltaName(80, 70), snapName(70), snapName(10)}; !slices.Equal(got, want) {
		t.Errorf("after pruning to one with base 10: %v, want %v", got, want)
	}
	for _, bad := range []string{"projection-00000000000000000080.from-00000000000000000080.snap",
		"projection-00000000000000000080.from-00000000000000000000.snap", "projection-80.snap"} {
		if _, _, ok := parseSnapName(bad); ok {
			t.Errorf("parseSnapName(%q) ok, want refused", bad)
		}
	}
}

// otherHex is x, a hex string, with its last digit changed.
func otherHex(x string) string {
	last := "0"
	if x[len(x)-1] == '0' {
		last = "1"
	}
	return x[:len(x)-1] + last
}
