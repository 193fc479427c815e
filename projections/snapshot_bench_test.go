package projections

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
)

// benchN reads a positive count from the environment variable name.
func benchN(tb testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// benchLedger fills a ledger in dir with n key creations spread over
// enclaves of 1,000 keys, in batches, plus system.initialized sealed
// under w; it returns the REK and its sealing. Attempt ids and
// fingerprints are random, as the server's are (they are most of what a
// compressed snapshot keeps).
func benchLedger(b *testing.B, dir string, w hsm.Wrapper, n int) (*hsm.REK, []byte) {
	ctx := context.Background()
	store, err := ledger.Open(ctx, ledger.Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	g := newGen(1)
	g.rng = nil // times in order
	init, rek := g.init(b, w)
	var sealed ledger.SystemInitialized
	if err := json.Unmarshal(init.Payload, &sealed); err != nil {
		b.Fatal(err)
	}
	evs := []ledger.Event{init}
	flush := func() {
		xs := make([]ledger.Expect, len(evs))
		for i := range xs {
			xs[i] = ledger.Expect{Any: true}
		}
		if _, _, err := store.AppendBatch(ctx, evs, xs); err != nil {
			b.Fatal(err)
		}
		evs = evs[:0]
	}
	for i := range n {
		e := fmt.Sprintf("tenant-%04d", i/1000)
		if i%1000 == 0 {
			evs = append(evs, g.ev(b, ledger.TypeEnclaveCreated, "", ledger.EnclaveSubject(e), ledger.EnclaveCreated{Name: e}))
		}
		name := fmt.Sprintf("bucket-%07d", i)
		evs = append(evs, g.ev(b, ledger.TypeKeyCreated, e, ledger.KeySubject(e, name), ledger.KeyCreated{Name: name, Version: 1,
			Type: "AES256", SecretRef: ledger.AttemptSecretRef(e, name, 1, randomHex(16)), Fingerprint: randomHex(32)}))
		if len(evs) >= ledger.MaxBatch-1 {
			flush()
		}
	}
	if len(evs) > 0 {
		flush()
	}
	return rek, sealed.SealedREK
}

// benchData returns the data directory of a ledger of n keys (benchLedger),
// the HSM key its REK is sealed under, and the REK; the key and the sealed
// REK are in files beside the directory (readBenchKeys). With
// KMSLEDGER_BENCH_DIR set, they are kept in that directory and reused by
// later runs (building a ledger of a million events takes minutes); keep
// reports so.
func benchData(b *testing.B, n int) (dir string, w *softkey.Key, rek *hsm.REK, keep bool) {
	root := os.Getenv("KMSLEDGER_BENCH_DIR")
	if keep = root != ""; !keep {
		root = b.TempDir()
	}
	dir = filepath.Join(root, fmt.Sprintf("ledger-%d", n))
	if _, err := os.Stat(dir + ".hsm"); err == nil {
		if w, rek, err = readBenchKeys(dir); err != nil {
			b.Fatal(err)
		}
		return dir, w, rek, keep
	}
	os.RemoveAll(dir)
	ks, err := softkey.Generate(crand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	if w, err = softkey.Parse(ks); err != nil {
		b.Fatal(err)
	}
	rek, sealed := benchLedger(b, dir, w, n)
	if err := os.WriteFile(dir+".rek", sealed, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(dir+".hsm", []byte(ks), 0o600); err != nil { // last: marks the ledger complete
		b.Fatal(err)
	}
	return dir, w, rek, keep
}

// readBenchKeys reads the HSM key and opens the REK of the ledger in dir
// (benchData).
func readBenchKeys(dir string) (*softkey.Key, *hsm.REK, error) {
	ks, err := os.ReadFile(dir + ".hsm")
	if err != nil {
		return nil, nil, err
	}
	sealed, err := os.ReadFile(dir + ".rek")
	if err != nil {
		return nil, nil, err
	}
	w, err := softkey.Parse(string(ks))
	if err != nil {
		return nil, nil, err
	}
	rek, err := hsm.OpenREK(context.Background(), w, sealed)
	return w, rek, err
}

// benchSnapDir returns the snapshot directory of the benchmark: a new one,
// or with a kept ledger one kept beside it per test binary, so that the
// builds of two versions with different snapshot formats can be run in
// turn without writing a snapshot (a full replay) every time.
func benchSnapDir(b *testing.B, ledgerDir string, keep bool) string {
	if !keep {
		return b.TempDir()
	}
	return ledgerDir + ".snaps-" + filepath.Base(os.Args[0])
}

// readyTimes add up the parts of benchReady.
type readyTimes struct {
	open, projection time.Duration // ledger.Open, then OpenWith
	read             time.Duration // reading the snapshot, while the ledger opens
}

// report adds the parts, per iteration, to b's results.
func (t *readyTimes) report(b *testing.B) {
	b.ReportMetric(t.open.Seconds()/float64(b.N), "open-s/op")
	b.ReportMetric(t.projection.Seconds()/float64(b.N), "projection-s/op")
	if t.read > 0 {
		b.ReportMetric(t.read.Seconds()/float64(b.N), "snapshot-read-s/op")
	}
}

// benchReady opens the ledger in dir and a projection of it, with the
// snapshots of cfg if snapshots, as a node starts (cmd/node): the
// snapshot is read while the ledger opens. It adds the time of each part
// to t.
func benchReady(b *testing.B, dir string, cfg *SnapshotConfig, rek *hsm.REK, snapshots bool, t *readyTimes) *Projection {
	ctx := context.Background()
	o := Options{}
	start := time.Now()
	if snapshots {
		o.Snapshots = cfg
		o.Preloaded = PreloadSnapshot(ctx, cfg, nil)
	}
	store, err := ledger.Open(ctx, ledger.Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	opened := time.Now()
	p, err := OpenWith(ctx, store, rek, nil, o)
	if err != nil {
		b.Fatal(err)
	}
	t.open += opened.Sub(start)
	t.projection += time.Since(opened)
	if pre := o.Preloaded; pre != nil {
		t.read += pre.took
	}
	return p
}

// BenchmarkReadyAfterRestart: the time from opening the data dir of a
// ledger of N keys (KMSLEDGER_BENCH_KEYS, default 100,000; one event
// each) to a projection that has applied the head, as after kill -9:
// with a snapshot at the head, with one 10,000 events behind, and with
// none (full replay). With a snapshot it also reports the snapshot's size
// and the time its writing took (encoding, sealing, fsync).
func BenchmarkReadyAfterRestart(b *testing.B) {
	n := benchN(b, "KMSLEDGER_BENCH_KEYS", 100_000)
	start := time.Now()
	dir, w, rek, keep := benchData(b, n)
	snaps := benchSnapDir(b, dir, keep)
	b.Logf("ledger of %d keys ready in %s", n, time.Since(start).Round(time.Millisecond))
	cfg := &SnapshotConfig{Dir: snaps, Every: 1 << 40, Interval: -1, Unseal: UnsealWith([]hsm.Wrapper{w})}
	var times readyTimes
	ready := func(b *testing.B, snapshots bool) *Projection { return benchReady(b, dir, cfg, rek, snapshots, &times) }
	for _, c := range []struct {
		name string
		tail int
	}{{"snapshot-at-head", 0}, {"snapshot-10k-behind", 10_000}, {"full-replay", -1}} {
		b.Run(c.name, func(b *testing.B) {
			if !keep || c.tail != 0 {
				os.RemoveAll(snaps) // else a kept snapshot at the head is used, or one is written
			}
			if c.tail >= 0 {
				p := ready(b, true)
				if c.tail > 0 {
					cut, err := StateAt(context.Background(), p.store, uint64(n-c.tail), time.Time{})
					if err != nil {
						b.Fatal(err)
					}
					p.mu.Lock()
					p.st = cut
					p.mu.Unlock()
				}
				wrote := time.Now()
				seq, err := p.Snapshot(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				took := time.Since(wrote)
				// a full snapshot, or a delta over one kept from an earlier run
				files, _ := filepath.Glob(filepath.Join(snaps, fmt.Sprintf("%s%020d*%s", snapPrefix, seq, snapSuffix)))
				if len(files) != 1 {
					b.Fatalf("snapshot files at %d: %v", seq, files)
				}
				fi, err := os.Stat(files[0])
				if err != nil {
					b.Fatal(err)
				}
				p.crash()
				p.store.Close()
				defer b.ReportMetric(took.Seconds(), "snapshot-write-s")
				defer b.ReportMetric(mib(int(fi.Size())), "snapshot-MiB")
			}
			times = readyTimes{}
			for b.Loop() {
				p := ready(b, c.tail >= 0)
				if c.tail >= 0 && p.StartedFrom() == 0 {
					b.Fatal("the snapshot was not used")
				}
				p.crash()
				p.store.Close()
			}
			times.report(b)
		})
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	crand.Read(b)
	return hex.EncodeToString(b)
}

func mib(n int) float64 { return float64(n) / (1 << 20) }

// liveHeap is the heap in use after a full collection.
func liveHeap() int {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int(m.HeapAlloc)
}

// BenchmarkTimeTravel: StateAt at a random sequence of a ledger of N
// events (KMSLEDGER_BENCH_EVENTS, default 100,000; key creations over
// enclaves of 1,000 keys) through the projection's index, after the
// first query built it, for one enclave (as for a tenant's auditor) and
// for the whole state (the root); and through a full replay (the package
// function).
func BenchmarkTimeTravel(b *testing.B) {
	n := benchN(b, "KMSLEDGER_BENCH_EVENTS", 100_000)
	dir, _, _, _ := benchData(b, n)
	ctx := context.Background()
	store, err := ledger.Open(ctx, ledger.Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	p, err := OpenWith(ctx, store, nil, nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	head, _ := store.Head(ctx)
	heap0 := liveHeap()
	start := time.Now()
	if _, err := p.StateAt(ctx, head, time.Time{}); err != nil {
		b.Fatal(err)
	}
	built := time.Since(start)
	x := p.asof
	x.mu.Lock()
	b.Logf("index of %d events built in %s: %d states, every %d events, %d history entries; RAM %.1f MiB (live heap %+.1f MiB; estimated: index %.2f, head state %.1f); spill file %.0f MiB",
		head, built.Round(time.Millisecond), len(x.points), x.every, x.entries, mib(x.ramBytes()), mib(liveHeap()-heap0), mib(x.indexBytes()),
		mib(x.curBytes()), mib(int(x.file.size)))
	x.mu.Unlock()
	rng := rand.New(rand.NewPCG(1, 2))
	b.Run("index-one-enclave", func(b *testing.B) {
		for b.Loop() {
			seq := 1 + rng.Uint64N(head)
			e := fmt.Sprintf("tenant-%04d", rng.Uint64N(seq/1000+1))
			if _, err := p.EnclaveStateAt(ctx, seq, time.Time{}, e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("index-whole-state", func(b *testing.B) {
		for b.Loop() {
			if _, err := p.StateAt(ctx, 1+rng.Uint64N(head), time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full-replay", func(b *testing.B) {
		for b.Loop() {
			if _, err := StateAt(ctx, store, 1+rng.Uint64N(head), time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSnapshotWrite: a snapshot of N keys (KMSLEDGER_BENCH_KEYS,
// default 100,000, in one enclave) written to a file, the way Snapshot
// writes it (compress-while-encoding: each piece compressed as soon as it
// is encoded) and the way it did before (encode-then-compress: the whole
// state encoded, then compressed piece by piece while sealing).
// locked-ms/op is the part done while the projection's read lock is
// held (writers wait for it); held-MiB is what that part leaves to be
// written after it. delta-of-a-tenth-more is the delta (compressDelta)
// after a tenth more keys were created.
func BenchmarkSnapshotWrite(b *testing.B) {
	n := benchN(b, "KMSLEDGER_BENCH_KEYS", 100_000)
	st := NewState()
	BuildKeys(b, st, n, 1)
	_, rek := newGen(1).init(b, testHSM(b))
	path := filepath.Join(b.TempDir(), "snap")
	h := snapHeader{Seq: st.Seq, Chain: chainHex(ledger.Sum{})}
	run := func(b *testing.B, locked func() (held int, write func(io.Writer) error)) {
		b.ReportAllocs()
		var lockedFor time.Duration
		var held int
		for b.Loop() {
			start := time.Now()
			var write func(io.Writer) error
			held, write = locked()
			lockedFor += time.Since(start)
			if err := writeFileAtomic(path, write); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(lockedFor.Milliseconds())/float64(b.N), "locked-ms/op")
		b.ReportMetric(mib(held), "held-MiB")
	}
	b.Run("encode-then-compress", func(b *testing.B) {
		run(b, func() (int, func(io.Writer) error) {
			e := encodeChunks(nil, st, snapChunk)
			return cap(e.b), func(w io.Writer) error { return sealSnapshot(w, h, e.b, e.cuts, rek) }
		})
	})
	b.Run("compress-while-encoding", func(b *testing.B) {
		run(b, func() (int, func(io.Writer) error) {
			pieces, size, err := compressState(st, snapChunk)
			hs := h
			hs.Size = size
			return piecesHeld(b, pieces, err), func(w io.Writer) error { return sealPieces(w, snapV3, hs, pieces, rek) }
		})
	})
	// A tenth more keys created after the full snapshot: the delta.
	st.track()
	f := &eventFeed{tb: b, seq: st.Seq, at: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}
	for i := n; i < n+n/10; i++ {
		name := fmt.Sprintf("bucket-%07d", i)
		if err := st.Apply(f.event(ledger.TypeKeyCreated, "e0", ledger.KeySubject("e0", name), memActor, ledger.KeyCreated{
			Name: name, Version: 1, Type: "AES256", SecretRef: ledger.AttemptSecretRef("e0", name, 1, fmt.Sprintf("%032x", i)),
			Fingerprint: fmt.Sprintf("%064x", i)})); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("delta-of-a-tenth-more", func(b *testing.B) {
		run(b, func() (int, func(io.Writer) error) {
			pieces, size, err := compressDelta(st, h.Seq, snapChunk)
			held := piecesHeld(b, pieces, err)
			hs := h
			hs.Size, hs.Seq, hs.Base = size, st.Seq, &snapBase{Seq: h.Seq, Chain: h.Chain}
			return held, func(w io.Writer) error { return sealPieces(w, snapDelta, hs, pieces, rek) }
		})
	})
}

// piecesHeld is the memory compressed pieces hold; err fails b.
func piecesHeld(b *testing.B, pieces [][]byte, err error) int {
	if err != nil {
		b.Fatal(err)
	}
	held := 0
	for _, p := range pieces {
		held += cap(p)
	}
	return held
}
