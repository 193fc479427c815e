package cluster

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kms"
)

// Benchmark shape: 16 kms-go workers for 10 s per figure.
const (
	benchWorkers = 16
	benchFor     = 10 * time.Second
)

// BenchmarkCluster measures durable key creations/s and GenerateKey/s on
// one node and on three nodes (kms-go with every endpoint), same machine:
//
//	go test -run '^$' -bench BenchmarkCluster -benchtime 1x ./cluster
func BenchmarkCluster(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			c := newCluster(b, n, "")
			cl := c.client(c.nodes...)
			ctx := b.Context()
			key := harness.UniqueName("bench")
			if err := cl.CreateKey(ctx, c.enclave, &kms.CreateKeyRequest{Name: key}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				creates, cerr := hammer(func(w, i int) error {
					return cl.CreateKey(ctx, c.enclave, &kms.CreateKeyRequest{Name: fmt.Sprintf("%s-%d-%d", key, w, i)})
				})
				gens, gerr := hammer(func(int, int) error {
					_, err := cl.GenerateKey(ctx, c.enclave, &kms.GenerateKeyRequest{Name: key, Length: 32})
					return err
				})
				b.ReportMetric(creates, "creates/s")
				b.ReportMetric(gens, "generates/s")
				figure(b, "%d node(s), %d workers, %v each: %.0f durable key creations/s (%d errors), %.0f GenerateKey/s (%d errors)",
					n, benchWorkers, benchFor, creates, cerr, gens, gerr)
			}
		})
	}
}

// hammer calls op from benchWorkers goroutines for benchFor and returns
// the successful calls per second and the number of errors.
func hammer(op func(worker, i int) error) (float64, int64) {
	var ok, failed atomic.Int64
	deadline := time.Now().Add(benchFor)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range benchWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				if op(w, i) != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(ok.Load()) / time.Since(start).Seconds(), failed.Load()
}
