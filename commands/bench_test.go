package commands

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
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
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range workers {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if _, err := h.Run(ctx, testRoot, "", CreateKey{Enclave: "e1", Name: fmt.Sprintf("k%d", i)}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "keys/s")
		})
	}
}

// benchHandler is a Handler on an initialised ledger with enclave e1.
func benchHandler(tb testing.TB) *Handler {
	tb.Helper()
	ctx := context.Background()
	store := ledgertest.Open(tb)
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
		InitParams{RootIdentity: testRoot, DefaultType: "AES256"})
	if err != nil {
		tb.Fatal(err)
	}
	h := NewHandler(store, proj, rek, nil)
	if _, err := h.Run(ctx, testRoot, "", CreateEnclave{Name: "e1"}); err != nil {
		tb.Fatal(err)
	}
	return h
}
