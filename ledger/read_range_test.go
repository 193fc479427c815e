package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// pauseConsumers pauses every consumer on stream st for an hour: the
// server keeps them and their pull requests but delivers nothing, as a
// consumer lost under a node restart or a leader move looks to its reader.
func pauseConsumers(t *testing.T, s *Store, st jetstream.Stream) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	names := st.ConsumerNames(ctx)
	n := 0
	for name := range names.Name() {
		if _, err := s.js.PauseConsumer(ctx, st.CachedInfo().Config.Name, name, time.Now().Add(time.Hour)); err != nil {
			t.Errorf("PauseConsumer(%s) err = %v", name, err)
		}
		n++
	}
	if err := names.Err(); err != nil {
		t.Errorf("ConsumerNames err = %v", err)
	}
	return n
}

// checkStallRead runs read, which reads messages 1..n of stream st and
// calls seen with each sequence it delivers, twice: once with a stall time
// longer than its budget (the control: the consumer paused at the first
// message stalls the read until the deadline) and once with a short one
// (the read goes on from a new consumer and delivers every message once
// and in order, well before the client's own heartbeat reset, 10 s, would
// have noticed).
func checkStallRead(t *testing.T, s *Store, st jetstream.Stream, name string, n uint64,
	read func(ctx context.Context, seen func(seq uint64)) (uint64, error)) {
	t.Helper()
	for _, tc := range []struct {
		stall  time.Duration
		budget time.Duration
		wantOK bool
	}{
		{stall: time.Hour, budget: 3 * time.Second, wantOK: false},
		{stall: 200 * time.Millisecond, budget: 8 * time.Second, wantOK: true},
	} {
		s.replayStall = tc.stall
		ctx, cancel := context.WithTimeout(context.Background(), tc.budget)
		var seqs []uint64
		paused := 0
		last, err := read(ctx, func(seq uint64) {
			if len(seqs) == 0 {
				paused = pauseConsumers(t, s, st)
			}
			seqs = append(seqs, seq)
		})
		cancel()
		if paused == 0 {
			t.Fatalf("%s: no consumer to pause", name)
		}
		if !tc.wantOK {
			if !errors.Is(err, context.DeadlineExceeded) || uint64(len(seqs)) >= n {
				t.Errorf("%s with stall %s = (%d, %v) after %d messages, want a stall before %d", name, tc.stall, last, err, len(seqs), n)
			}
			continue
		}
		if err != nil || last != n || uint64(len(seqs)) != n {
			t.Fatalf("%s with stall %s = (%d, %v) after %d messages, want (%d, nil) after %d", name, tc.stall, last, err, len(seqs), n, n)
		}
		for i, seq := range seqs {
			if seq != uint64(i+1) {
				t.Fatalf("%s delivered seq %d as message %d, want each once in order", name, seq, i+1)
			}
		}
	}
}

// TestReplayReadsOnPastASilentConsumer: both replays of LEDGER, with
// more than a pull's worth of events after the pause.
func TestReplayReadsOnPastASilentConsumer(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	n := 3 * replayBatch
	mustAppend(t, s, KeySubject("enc", "k"), n)
	checkStallRead(t, s, s.ledger, "Replay", uint64(n), func(ctx context.Context, seen func(uint64)) (uint64, error) {
		return s.Replay(ctx, 1, func(ev Event) error { seen(ev.Seq); return nil })
	})
	checkStallRead(t, s, s.ledger, "ReplayChained", uint64(n), func(ctx context.Context, seen func(uint64)) (uint64, error) {
		last, _, err := s.ReplayChained(ctx, 1, Sum{}, func(ev Event) error { seen(ev.Seq); return nil })
		return last, err
	})
}

// TestScanSecretsReadsOnPastASilentConsumer: the scan of SECRETS that a
// node's start runs (headers only; a pull is scanBatch messages).
func TestScanSecretsReadsOnPastASilentConsumer(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	n := 2*scanBatch + 100
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				if err := s.PutSecret(context.Background(), fmt.Sprintf("e.k%d.1.a", i), []byte("sealed")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	checkStallRead(t, s, s.secrets, "ScanSecrets", uint64(n), func(ctx context.Context, seen func(uint64)) (uint64, error) {
		return s.ScanSecrets(ctx, 1, func(e SecretEntry) error { seen(e.Seq); return nil })
	})
}
