package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// waitTimeout bounds waits on asynchronous delivery; reaching it fails the
// test rather than hanging it. It is not a performance assertion.
const waitTimeout = 20 * time.Second

func TestReplayOrderAndBounds(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	// Interleave aggregates so stream order differs from per-subject order.
	for i := range 10 {
		mustAppend(t, s, KeySubject("enc", fmt.Sprintf("k%d", i%3)), 1)
	}
	tests := []struct {
		from      uint64
		wantFirst uint64 // 0 = nothing delivered
		wantLast  uint64
	}{
		{0, 1, 10},
		{1, 1, 10},
		{4, 4, 10},
		{10, 10, 10},
		{11, 0, 10},
		{50, 0, 49},
	}
	for _, tt := range tests {
		var got []Event
		last, err := s.Replay(ctx, tt.from, func(ev Event) error { got = append(got, ev); return nil })
		if err != nil || last != tt.wantLast {
			t.Errorf("Replay(from %d) = (%d, %v), want (%d, nil)", tt.from, last, err, tt.wantLast)
			continue
		}
		if tt.wantFirst == 0 {
			if len(got) != 0 {
				t.Errorf("Replay(from %d) delivered %d events, want 0", tt.from, len(got))
			}
			continue
		}
		if want := int(tt.wantLast - tt.wantFirst + 1); len(got) != want {
			t.Errorf("Replay(from %d) delivered %d events, want %d", tt.from, len(got), want)
			continue
		}
		for i, ev := range got {
			if want := tt.wantFirst + uint64(i); ev.Seq != want {
				t.Errorf("Replay(from %d) event %d has Seq %d, want %d", tt.from, i, ev.Seq, want)
			}
		}
	}
}

func TestReplayRoundTripsEnvelope(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	in := testEvent(PolicySubject("enc", "p"), "rt-1")
	seq, _, err := s.Append(ctx, in, Expect{})
	if err != nil {
		t.Fatalf("Append err = %v", err)
	}
	var out Event
	if _, err := s.Replay(ctx, seq, func(ev Event) error { out = ev; return nil }); err != nil {
		t.Fatalf("Replay err = %v", err)
	}
	in.Seq = seq
	if out.Type != in.Type || out.ID != in.ID || !out.Time.Equal(in.Time) || out.Actor != in.Actor ||
		out.Enclave != in.Enclave || out.Aggregate != in.Aggregate || out.CommandID != in.CommandID ||
		string(out.Payload) != string(in.Payload) || out.Seq != in.Seq {
		t.Fatalf("Replay event = %+v, want %+v", out, in)
	}
}

// TestReplayLeavesNoConsumer: a finished replay deletes its consumer, so
// that a burst of replays (time-travel queries) does not reach the
// server's limit of 1,000 consumers on a stream while the idle ones wait
// to expire.
func TestReplayLeavesNoConsumer(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	mustAppend(t, s, KeySubject("enc", "k"), 3)
	stop := errors.New("stop")
	for i := range 1_100 {
		_, err := s.Replay(ctx, 1, func(ev Event) error {
			if i%2 == 0 && ev.Seq == 2 {
				return stop // stopped early too
			}
			return nil
		})
		if err != nil && !errors.Is(err, stop) {
			t.Fatalf("Replay #%d err = %v", i, err)
		}
	}
	info, err := s.ledger.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Consumers; n > 0 {
		t.Errorf("LEDGER has %d consumers after the replays, want 0", n)
	}
}

func TestReplayStopsOnCallbackError(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	mustAppend(t, s, KeySubject("enc", "k"), 5)
	boom := errors.New("boom")
	last, err := s.Replay(context.Background(), 1, func(ev Event) error {
		if ev.Seq == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || last != 2 {
		t.Fatalf("Replay = (%d, %v), want (2, boom)", last, err)
	}
}

func TestReplayMalformedMessage(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	mustAppend(t, s, KeySubject("enc", "k"), 1)
	// Something other than Append writes to LEDGER.
	if _, err := s.js.Publish(ctx, KeySubject("enc", "k"), []byte("not json")); err != nil {
		t.Fatalf("raw publish err = %v", err)
	}
	last, err := s.Replay(ctx, 1, func(Event) error { return nil })
	if !errors.Is(err, ErrMalformed) || last != 1 {
		t.Fatalf("Replay = (%d, %v), want (1, ErrMalformed)", last, err)
	}
}

// collector records subscribed events and signals when a sequence arrives.
type collector struct {
	mu     sync.Mutex
	events []Event
	want   uint64
	reach  chan struct{}
}

func newCollector(want uint64) *collector {
	return &collector{want: want, reach: make(chan struct{})}
}

func (c *collector) add(ev Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, ev)
	if ev.Seq == c.want {
		close(c.reach)
	}
}

func (c *collector) wait(t *testing.T) []Event {
	t.Helper()
	select {
	case <-c.reach:
	case <-time.After(waitTimeout):
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Fatalf("seq %d not delivered within %s; got %d events", c.want, waitTimeout, len(c.events))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

func TestSubscribeFromMiddleNoGaps(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	mustAppend(t, s, KeySubject("enc", "before"), 20)

	const from, writers, perWriter = 7, 4, 25
	total := uint64(20 + writers*perWriter)
	c := newCollector(total)
	stop, err := s.Subscribe(ctx, from, c.add)
	if err != nil {
		t.Fatalf("Subscribe err = %v", err)
	}
	defer stop()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() { mustAppend(t, s, KeySubject("enc", fmt.Sprintf("w%d", w)), perWriter) })
	}
	wg.Wait()
	got := c.wait(t)
	stop()

	if want := int(total - from + 1); len(got) != want {
		t.Fatalf("Subscribe delivered %d events, want %d", len(got), want)
	}
	for i, ev := range got {
		if want := uint64(from + i); ev.Seq != want {
			t.Fatalf("event %d has Seq %d, want %d (gap or reorder)", i, ev.Seq, want)
		}
	}
}

func TestSubscribeStop(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	mustAppend(t, s, KeySubject("enc", "k"), 3)
	c := newCollector(3)
	stop, err := s.Subscribe(ctx, 0, c.add)
	if err != nil {
		t.Fatalf("Subscribe err = %v", err)
	}
	c.wait(t)
	stop()
	stop() // idempotent
	mustAppend(t, s, KeySubject("enc", "k"), 3)
	// Replay is synchronous: once it has seen seq 6, a live subscription
	// would have had every chance to receive something. Close then waits
	// for any delivery in flight.
	if last, err := s.Replay(ctx, 1, func(Event) error { return nil }); err != nil || last != 6 {
		t.Fatalf("Replay = (%d, %v), want (6, nil)", last, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close err = %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.events) != 3 {
		t.Fatalf("delivered %d events after stop, want 3", len(c.events))
	}
}

func TestSubscribeContextCancel(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	mustAppend(t, s, KeySubject("enc", "k"), 1)
	c := newCollector(1)
	if _, err := s.Subscribe(ctx, 1, c.add); err != nil {
		t.Fatalf("Subscribe err = %v", err)
	}
	c.wait(t)
	cancel()
	// Cancellation removes the subscription from the store.
	waitFor(t, waitTimeout, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.subs) == 0
	})
}

func TestSubscribeStopsOnMalformedMessage(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	mustAppend(t, s, KeySubject("enc", "k"), 1)
	if _, err := s.js.Publish(ctx, KeySubject("enc", "k"), []byte("not json")); err != nil {
		t.Fatalf("raw publish err = %v", err)
	}
	mustAppend(t, s, KeySubject("enc", "k"), 1)
	c := newCollector(1)
	if _, err := s.Subscribe(ctx, 1, c.add); err != nil {
		t.Fatalf("Subscribe err = %v", err)
	}
	c.wait(t)
	waitFor(t, waitTimeout, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.subs) == 0
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.events) != 1 {
		t.Fatalf("delivered %d events, want 1 (nothing past the malformed message)", len(c.events))
	}
}
