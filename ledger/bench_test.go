package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAppend measures durable appends (fsync before ack) of ~300-byte
// envelopes, each with a per-aggregate expectation, from one goroutine and
// from 16.
//
//	go test -run '^$' -bench BenchmarkAppend -benchtime 2000x ./ledger
func BenchmarkAppend(b *testing.B) {
	for _, workers := range []int{1, 16} {
		b.Run(fmt.Sprintf("goroutines=%d", workers), func(b *testing.B) {
			s := openTestStore(b, "")
			ctx := context.Background()
			payload := json.RawMessage(`{"pad":"` + strings.Repeat("x", 100) + `"}`)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range workers {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						ev := testEvent(KeySubject("bench", fmt.Sprintf("w%d-%d", w, i)), fmt.Sprintf("bench-%d", i))
						ev.Payload = payload
						if _, _, err := s.Append(ctx, ev, Expect{}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
		})
	}
}
