package ledger

import (
	"context"
	"errors"
	"testing"
	"time"
)

// pauseLedgerConsumers pauses every consumer on LEDGER for an hour: the
// server keeps them and their pull requests but delivers nothing, as a
// consumer lost under a node restart or a leader move looks to its reader.
func pauseLedgerConsumers(t *testing.T, s *Store) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	names := s.ledger.ConsumerNames(ctx)
	n := 0
	for name := range names.Name() {
		if _, err := s.js.PauseConsumer(ctx, ledgerStream, name, time.Now().Add(time.Hour)); err != nil {
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
					paused = pauseLedgerConsumers(t, s)
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
