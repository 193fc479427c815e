package projections_test

import (
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/kmsledger/kmsledger/projections"
)

// memKeys is the number of keys the memory benchmarks build:
// KMSLEDGER_BENCH_KEYS, default 100,000.
func memKeys(tb testing.TB) int {
	n := 100_000
	if s := os.Getenv("KMSLEDGER_BENCH_KEYS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			tb.Fatalf("KMSLEDGER_BENCH_KEYS=%q: want a positive number", s)
		}
	}
	return n
}

// memEnclaves is the number of enclaves the keys are spread over:
// KMSLEDGER_BENCH_ENCLAVES, default 1.
func memEnclaves(tb testing.TB) int {
	n := 1
	if s := os.Getenv("KMSLEDGER_BENCH_ENCLAVES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			tb.Fatalf("KMSLEDGER_BENCH_ENCLAVES=%q: want a positive number", s)
		}
	}
	return n
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkStateMemory reports what the projection of N keys
// (KMSLEDGER_BENCH_KEYS, default 100,000) spread over
// KMSLEDGER_BENCH_ENCLAVES enclaves (default 1) costs in live heap per
// key, built through the apply path as a replay builds it.
func BenchmarkStateMemory(b *testing.B) {
	n, enclaves := memKeys(b), memEnclaves(b)
	for b.Loop() {
		before := heapInUse()
		st := projections.NewState()
		projections.BuildKeys(b, st, n, enclaves)
		after := heapInUse()
		b.ReportMetric(float64(after-before)/float64(n), "B/key")
		runtime.KeepAlive(st)
	}
}
