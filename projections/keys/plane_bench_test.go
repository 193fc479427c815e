package keys_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// The data plane over many keys (BENCHMARKS.md, "Memory and the key
// cache"): N keys (KMSLEDGER_BENCH_KEYS, default 100,000) in
// KMSLEDGER_BENCH_ENCLAVES enclaves (default 1) with a key cache of
// KMSLEDGER_BENCH_CACHE versions (default projections.DefaultKeyCache),
// then GenerateDataKey+Decrypt pairs on one hot key and on random keys,
// from 4 goroutines per core, for KMSLEDGER_BENCH_SECONDS (default 5)
// each, in 5 alternating rounds. Run:
//
//	go test ./projections/keys -run '^$' -bench RandomKeys -benchtime 1x
//
// The ledger is opened without fsync: the keys are created for the
// measurement, which reads only. Reported: pairs/s hot and random, their
// ratio, the key cache's hit rate over the random run (after a warm-up
// that uses every key once, so the cache is as full as a long run leaves
// it), the process's resident memory (VmRSS) after creating the keys and
// after the random run, the live heap per key after creating them (the
// ledger's in-memory state included) and per cached unsealed version.
func BenchmarkRandomKeys(b *testing.B) {
	keys, enclaves := benchEnv(b, "KMSLEDGER_BENCH_KEYS", 100_000), benchEnv(b, "KMSLEDGER_BENCH_ENCLAVES", 1)
	cache := benchEnv(b, "KMSLEDGER_BENCH_CACHE", projections.DefaultKeyCache)
	d := time.Duration(benchEnv(b, "KMSLEDGER_BENCH_SECONDS", 5)) * time.Second
	store, err := ledger.Open(context.Background(), ledger.Config{Dir: b.TempDir(), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	n := newNodeOn(b, store, projections.Options{KeyCache: cache})
	start := time.Now()
	names := createKeys(b, n, keys, enclaves)
	b.Logf("%d keys in %d enclaves created in %v", keys, enclaves, time.Since(start).Round(time.Second))
	rssCreated, heapCreated := rssMB(b), liveHeap()
	if path := os.Getenv("KMSLEDGER_BENCH_HEAPPROFILE"); path != "" {
		writeHeapProfile(b, path) // what the keys cost, by allocation site
	}
	var next atomic.Int64 // the warm-up uses every key once, as a long random run would
	warm := runPairs(b, n, "warm-up", 0, func(*rand.Rand) [2]string { return names[int(next.Add(1)-1)%len(names)] }, int64(len(names)))
	b.Logf("warm-up: every key once, %.0f pairs/s (all misses)", warm)
	for b.Loop() {
		// Hot and random take turns, 5 rounds each, so that the machine's
		// drift hits both alike.
		const rounds = 5
		var hot, random float64
		var hits, lookups uint64
		for range rounds {
			hot += runPairs(b, n, "hot", d/rounds, func(*rand.Rand) [2]string { return names[0] }, 0) / rounds
			c0 := n.proj.KeyCacheStats()
			random += runPairs(b, n, "random", d/rounds, func(r *rand.Rand) [2]string { return names[r.IntN(len(names))] }, 0) / rounds
			c1 := n.proj.KeyCacheStats()
			hits, lookups = hits+c1.Hits-c0.Hits, lookups+(c1.Hits+c1.Misses)-(c0.Hits+c0.Misses)
		}
		b.ReportMetric(hot, "hot-pairs/s")
		b.ReportMetric(random, "random-pairs/s")
		b.ReportMetric(random/hot, "random/hot")
		if lookups > 0 {
			b.ReportMetric(float64(hits)/float64(lookups), "hit-rate")
		}
	}
	c := n.proj.KeyCacheStats()
	heapUsed := liveHeap()
	b.ReportMetric(rssMB(b), "rss-MB-used")
	b.ReportMetric(rssCreated, "rss-MB-created")
	b.ReportMetric(float64(heapCreated)/float64(keys), "heap-B/key")
	if c.Size > 0 && heapUsed > heapCreated {
		b.ReportMetric(float64(heapUsed-heapCreated)/float64(c.Size), "heap-B/cached")
	}
}

// benchEnv reads a positive number from the environment, or def.
func benchEnv(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, s)
	}
	return v
}

// createKeys creates keys keys spread over enclaves enclaves (b0, b1, ...)
// through the command handler, one writer per enclave at a time as the
// handler allows, and returns their enclave and name.
func createKeys(b *testing.B, n *node, keys, enclaves int) [][2]string {
	ctx := context.Background()
	names := make([][2]string, keys)
	for i := range names {
		names[i] = [2]string{fmt.Sprintf("b%d", i%enclaves), fmt.Sprintf("bucket-%07d", i)}
	}
	for e := range enclaves {
		n.run(commands.CreateEnclave{Name: fmt.Sprintf("b%d", e)})
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for range min(enclaves, 2*runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= keys {
					return
				}
				cmd := commands.CreateKey{Enclave: names[i][0], Name: names[i][1]}
				if _, err := n.h.Execute(ctx, root, "", cmd); err != nil {
					select {
					case errc <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		b.Fatal(err)
	default:
	}
	return names
}

// runPairs runs GenerateDataKey+Decrypt pairs on the keys pick chooses
// from 4 goroutines per core for d (or, if count > 0, count pairs), and
// returns pairs/s. The goroutines carry the profiler label phase.
func runPairs(b *testing.B, n *node, phase string, d time.Duration, pick func(*rand.Rand) [2]string, count int64) float64 {
	ctx := context.Background()
	var done, todo atomic.Int64
	todo.Store(count)
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	start := time.Now()
	for w := range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("phase", phase)))
			r := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for count > 0 && todo.Add(-1) >= 0 || count == 0 && time.Now().Before(stop) {
				k := pick(r)
				if err := n.roundTrip(ctx, k[0], k[1]); err != nil {
					b.Error(err)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds()
}

// rssMB is the process's resident memory (VmRSS) in MB.
func rssMB(b *testing.B) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1000
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// writeHeapProfile writes the live heap's profile to path.
func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// liveHeap is the live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
