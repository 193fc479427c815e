package ledger

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// appliedAt is a stand-in for a node's projection: WaitFor returns once
// set(seq) reached seq.
type appliedAt struct {
	mu      sync.Mutex
	seq     uint64
	changed chan struct{}
}

func newAppliedAt() *appliedAt { return &appliedAt{changed: make(chan struct{})} }

func (a *appliedAt) set(seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq = seq
	close(a.changed)
	a.changed = make(chan struct{})
}

func (a *appliedAt) get() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seq
}

func (a *appliedAt) wait(ctx context.Context, seq uint64) error {
	for {
		a.mu.Lock()
		done, ch := a.seq >= seq, a.changed
		a.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitMembers waits until s's barrier has heard from n other nodes.
func waitMembers(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		p := s.presence
		s.mu.Unlock()
		if got := len(p.members()); got == n {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("barrier of %s heard from %d nodes, want %d", s.node, got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterBarrier: Barrier returns only after every other node has
// applied the sequence; a node that does not apply it is named after
// BarrierTimeout; a node that left is no longer waited for; requests and
// answers that are not a member's well-formed confirmation change nothing.
func TestClusterBarrier(t *testing.T) {
	tc := startCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	applied := make([]*appliedAt, 3)
	for i, s := range tc.stores {
		applied[i] = newAppliedAt()
		if err := s.StartBarrier(ctx, applied[i].wait); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range tc.stores {
		waitMembers(t, s, 2)
	}
	n1 := tc.stores[0]

	// Both others apply 10 after a delay: Barrier waits for both.
	var late atomic.Bool
	go func() {
		time.Sleep(200 * time.Millisecond)
		applied[1].set(10)
		time.Sleep(100 * time.Millisecond)
		late.Store(true)
		applied[2].set(10)
	}()
	got, err := n1.Barrier(ctx, 10)
	if err != nil || got != 2 {
		t.Fatalf("Barrier(10) = %d, %v; want 2 confirmations, no error", got, err)
	}
	if !late.Load() || applied[2].get() < 10 {
		t.Fatal("Barrier returned before the last node applied the sequence")
	}

	// Forged and malformed traffic on the barrier's subjects: a request
	// that is not a sequence gets no answer, an answer below the
	// sequence asked for does not count.
	if _, err := n1.nc.Request(appliedSubject, []byte("not a number"), 300*time.Millisecond); err == nil {
		t.Error("a malformed barrier request was answered")
	}
	// Answers every request with a stale confirmation in n3's name.
	forger, err := tc.stores[1].nc.Subscribe(appliedSubject, func(m *nats.Msg) {
		m.Respond([]byte(`{"member":"` + presenceOf(tc.stores[2]) + `","applied":1}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Unsubscribe()
	if err := tc.stores[1].nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// n3 never applies 20: Barrier names it after BarrierTimeout.
	applied[1].set(20)
	start := time.Now()
	_, err = n1.Barrier(ctx, 20)
	var be *ErrBarrier
	if !errors.As(err, &be) || len(be.Missing) != 1 || !strings.HasPrefix(be.Missing[0], "n3-") {
		t.Fatalf("Barrier(20) with n3 behind = %v; want ErrBarrier naming n3", err)
	}
	if took := time.Since(start); took < BarrierTimeout {
		t.Errorf("Barrier gave up after %v, before its timeout %v", took, BarrierTimeout)
	}

	// n3 leaves: once its presence lapses it is not waited for.
	tc.stores[2].Close()
	waitMembers(t, n1, 1)
	applied[1].set(30)
	if got, err := n1.Barrier(ctx, 30); err != nil || got != 1 {
		t.Fatalf("Barrier(30) after n3 left = %d, %v; want 1, no error", got, err)
	}
}

// presenceOf is s's member id.
func presenceOf(s *Store) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.presence.self
}

// TestBarrierSingleServer: on a single server Barrier returns at once.
func TestBarrierSingleServer(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	if err := s.StartBarrier(context.Background(), func(context.Context, uint64) error { return errors.New("never") }); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Barrier(context.Background(), 1); err != nil || got != 0 {
		t.Fatalf("Barrier on a single server = %d, %v; want 0, nil", got, err)
	}
}
