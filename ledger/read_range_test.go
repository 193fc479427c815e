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

// TestReplayReadsOnPastASilentConsumer pauses the replay's consumer after
// its first events, with more than a pull's worth still to come. Both
// replays then go on from a new consumer and deliver every event once and
// in order, well before the client's own heartbeat reset (10 s) would
// have noticed. The control case, with a stall time longer than the
// request, shows that the paused consumer alone does stall the read.
func TestReplayReadsOnPastASilentConsumer(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	n := 3 * replayBatch
	mustAppend(t, s, KeySubject("enc", "k"), n)
	head := uint64(n)
	replays := map[string]func(context.Context, func(Event) error) (uint64, error){
		"Replay": func(ctx context.Context, fn func(Event) error) (uint64, error) {
			return s.Replay(ctx, 1, fn)
		},
		"ReplayChained": func(ctx context.Context, fn func(Event) error) (uint64, error) {
			last, _, err := s.ReplayChained(ctx, 1, Sum{}, fn)
			return last, err
		},
	}
	for name, replay := range replays {
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
			last, err := replay(ctx, func(ev Event) error {
				if ev.Seq == 2 {
					paused = pauseConsumers(t, s, s.ledger)
				}
				seqs = append(seqs, ev.Seq)
				return nil
			})
			cancel()
			if paused == 0 {
				t.Fatalf("%s: no consumer to pause", name)
			}
			if !tc.wantOK {
				if !errors.Is(err, context.DeadlineExceeded) || last >= head {
					t.Errorf("%s with stall %s = (%d, %v), want a stall before %d", name, tc.stall, last, err, head)
				}
				continue
			}
			if err != nil || last != head || uint64(len(seqs)) != head {
				t.Fatalf("%s with stall %s = (%d, %v) after %d events, want (%d, nil)", name, tc.stall, last, err, len(seqs), head)
			}
			for i, seq := range seqs {
				if seq != uint64(i+1) {
					t.Fatalf("%s delivered seq %d as event %d, want each once in order", name, seq, i+1)
				}
			}
		}
	}
}

// TestScanSecretsReadsOnPastASilentConsumer is the same fault for the scan
// of SECRETS that a node's start runs (headers only, one pull is
// scanBatch messages).
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
		last, err := s.ScanSecrets(ctx, 1, func(e SecretEntry) error {
			if len(seqs) == 0 {
				paused = pauseConsumers(t, s, s.secrets)
			}
			seqs = append(seqs, e.Seq)
			return nil
		})
		cancel()
		if paused == 0 {
			t.Fatalf("no consumer to pause")
		}
		if !tc.wantOK {
			if !errors.Is(err, context.DeadlineExceeded) || len(seqs) >= n {
				t.Errorf("ScanSecrets with stall %s = (%d, %v) after %d entries, want a stall before %d", tc.stall, last, err, len(seqs), n)
			}
			continue
		}
		if err != nil || last != uint64(n) || len(seqs) != n {
			t.Fatalf("ScanSecrets with stall %s = (%d, %v) after %d entries, want (%d, nil) after %d", tc.stall, last, err, len(seqs), n, n)
		}
		for i, seq := range seqs {
			if seq != uint64(i+1) {
				t.Fatalf("ScanSecrets delivered seq %d as entry %d, want each once in order", seq, i+1)
			}
		}
	}
}
