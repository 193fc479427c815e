package commands

import (
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger/ledgertest"
	"github.com/kmsledger/kmsledger/projections"
)

// BenchmarkCreateKey measures durable key creation through the Handler
// (decide, seal, store the material, append the event, wait for the
// projection): every creation is on disk before it returns. The workers
// create distinct keys in one enclave.
//
//	go test -run '^$' -bench BenchmarkCreateKey -benchtime 4000x ./commands
func BenchmarkCreateKey(b *testing.B) {
	for _, workers := range []int{1, 32} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			h := benchHandler(b)
			b.ResetTimer()
			start := time.Now()
			createKeys(b, h, workers, b.N)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "keys/s")
			groups, appends, largest := h.store.GroupStats()
			b.ReportMetric(float64(appends)/float64(max(groups, 1)), "appends/group")
			b.ReportMetric(float64(largest), "largest-group")
		})
	}
}

// benchRoot is the benchmarks' root identity, in the form of a real one
// ("h1:" and 43 characters of base64url): every event records its actor,
// so a shorter name would understate the bytes an event takes.
const benchRoot = "h1:oYh-NzQ7pUBe3Bv8b2t1c3VzdDZNbGRnRkxtQ1RyeHc"

// createKeys creates keys k1 … kn in e1 from workers goroutines.
func createKeys(b *testing.B, h *Handler, workers, n int) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if _, err := h.Run(ctx, benchRoot, "", CreateKey{Enclave: "e1", Name: fmt.Sprintf("k%d", i)}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkDataDirPerKey creates b.N keys (32 workers) and reports the
// bytes the data directory takes per key, per stream (blocks allocated
// on disk, as du counts them; the streams' index files included).
//
//	go test -run '^$' -bench BenchmarkDataDirPerKey -benchtime 20000x ./commands
func BenchmarkDataDirPerKey(b *testing.B) {
	dir := b.TempDir()
	h := benchHandlerDir(b, dir)
	createKeys(b, h, 32, b.N)
	b.StopTimer()
	if err := h.store.Close(); err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, stream := range []string{"LEDGER", "SECRETS", "AUDIT"} {
		n := duBytes(b, filepath.Join(dir, "jetstream", "$G", "streams", stream))
		total += n
		b.ReportMetric(float64(n)/float64(b.N), stream+"-B/key")
	}
	b.ReportMetric(float64(duBytes(b, dir))/float64(b.N), "B/key")
}

// duBytes is the disk space the files under dir take (st_blocks).
func duBytes(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// benchHandler is a Handler on an initialised ledger with enclave e1.
func benchHandler(tb testing.TB) *Handler {
	tb.Helper()
	return benchHandlerDir(tb, tb.TempDir())
}

// benchHandlerDir is benchHandler on the data directory dir.
func benchHandlerDir(tb testing.TB, dir string) *Handler {
	tb.Helper()
	ctx := context.Background()
	store := ledgertest.OpenDir(tb, dir)
	proj, err := projections.Open(ctx, store, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(proj.Close)
	s, err := softkey.Generate(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := softkey.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	rek, _, err := Unseal(ctx, store, proj, []NamedHSM{{Name: "soft", Kind: "soft", W: k}},
		InitParams{RootIdentity: benchRoot, DefaultType: "AES256"})
	if err != nil {
		tb.Fatal(err)
	}
	h := NewHandler(store, proj, rek, nil)
	if _, err := h.Run(ctx, benchRoot, "", CreateEnclave{Name: "e1"}); err != nil {
		tb.Fatal(err)
	}
	return h
}
