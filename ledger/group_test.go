package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// queued returns, for the test, how many messages wait in q.
func (q *groupQueue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// appendResult is the outcome of one Append of a test.
type appendResult struct {
	seq uint64
	dup bool
	err error
}

// holdChain holds the LEDGER chain and runs start(0) … start(n-1), each
// of which must begin one Append: the first is taken into a group at
// once (which then waits for the chain), the others queue together
// behind it. It returns with the chain held and the n-1 queued; release
// unlocks the chain.
func holdChain(t *testing.T, s *Store, n int, start func(i int)) (release func()) {
	t.Helper()
	c := s.chains.ledger
	c.mu.Lock()
	wait := func(what string, ok func() bool) {
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				c.mu.Unlock()
				t.Fatalf("%s: not within 30 s", what)
			}
		}
	}
	groups := c.q.groups.Load()
	start(0)
	wait("first append taken", func() bool { return c.q.groups.Load() > groups })
	for i := 1; i < n; i++ {
		start(i)
	}
	wait("appends queued", func() bool { return c.q.queued() == n-1 })
	return c.mu.Unlock
}

// appendsInOneGroup appends evs (with xs) so that all but the first are
// in one group (holdChain) and returns the results, in order.
func appendsInOneGroup(t *testing.T, s *Store, evs []Event, xs []Expect) []appendResult {
	t.Helper()
	ctx := context.Background()
	res := make([]appendResult, len(evs))
	var wg sync.WaitGroup
	release := holdChain(t, s, len(evs), func(i int) {
		wg.Go(func() {
			res[i].seq, res[i].dup, res[i].err = s.Append(ctx, evs[i], xs[i])
		})
		if i > 0 {
			// Queue in order: wait until this one is queued.
			for s.chains.ledger.q.queued() < i {
				time.Sleep(time.Millisecond)
			}
		}
	})
	release()
	wg.Wait()
	return res
}

// TestGroupCommitMemberFailsAlone: in one group, a member whose
// expectation fails gets ErrConflict and a member whose command id was
// already appended gets its original sequence with dup, exactly as
// alone; every other member is stored, in order, and the chain verifies.
// The first append is taken alone while the chain is held; the others,
// queued meanwhile, join its group while its ack comes back (group.go),
// so the largest group holds them all.
func TestGroupCommitMemberFailsAlone(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	first, _, err := s.Append(ctx, testEvent(KeySubject("enc", "old"), "old-1"), Expect{})
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	var xs []Expect
	for i := range 12 {
		evs = append(evs, testEvent(KeySubject("enc", fmt.Sprintf("k%d", i)), fmt.Sprintf("c%d", i)))
		xs = append(xs, Expect{})
	}
	const conflict, dup = 4, 8
	xs[conflict] = Expect{Seq: 99} // the subject holds nothing
	evs[dup] = testEvent(KeySubject("enc", "old"), "old-1")
	xs[dup] = Expect{Any: true}
	before := s.chains.ledger.q.largest.Load()

	res := appendsInOneGroup(t, s, evs, xs)

	if got := s.chains.ledger.q.largest.Load(); got < uint64(len(evs)-1) || before >= got {
		t.Fatalf("largest group = %d (was %d), want >= %d: the appends were not grouped", got, before, len(evs)-1)
	}
	var conflictErr *ConflictError
	if !errors.As(res[conflict].err, &conflictErr) || conflictErr.Subject != evs[conflict].Aggregate {
		t.Errorf("conflicting member: err = %v, want a *ConflictError on %s", res[conflict].err, evs[conflict].Aggregate)
	}
	if r := res[dup]; r.err != nil || !r.dup || r.seq != first {
		t.Errorf("duplicate member = (%d, %v, %v), want (%d, true, nil)", r.seq, r.dup, r.err, first)
	}
	seen := map[uint64]bool{}
	for i, r := range res {
		if i == conflict || i == dup {
			continue
		}
		if r.err != nil || r.dup || r.seq <= first || seen[r.seq] {
			t.Errorf("member %d = (%d, %v, %v), want a new sequence and no error", i, r.seq, r.dup, r.err)
			continue
		}
		seen[r.seq] = true
		ev, ok, err := s.Lookup(ctx, evs[i].Aggregate, evs[i].CommandID)
		if err != nil || !ok || ev.Seq != r.seq || ev.ID != evs[i].ID {
			t.Errorf("Lookup(member %d) = (%d %s, %v, %v), want seq %d %s", i, ev.Seq, ev.ID, ok, err, r.seq, evs[i].ID)
		}
	}
	if last, err := s.LastSeq(ctx, evs[conflict].Aggregate); err != nil || last != 0 {
		t.Errorf("LastSeq(conflicting subject) = (%d, %v), want (0, nil)", last, err)
	}
	if head, err := s.Head(ctx); err != nil || head != first+uint64(len(evs)-2) {
		t.Errorf("Head() = (%d, %v), want %d", head, err, first+uint64(len(evs)-2))
	}
	if _, err := s.Verify(ctx, VerifyOptions{}); err != nil {
		t.Fatalf("Verify after a group with failures: %v", err)
	}
}

// TestGroupCommitSameSubjectSplits: racing creators of one subject
// queued together are never decided in one group: exactly one wins.
func TestGroupCommitSameSubjectSplits(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	var evs []Event
	var xs []Expect
	for i := range 8 {
		evs = append(evs, testEvent(KeySubject("enc", "same"), fmt.Sprintf("r%d", i)))
		xs = append(xs, Expect{})
	}
	res := appendsInOneGroup(t, s, evs, xs)
	wins := 0
	for i, r := range res {
		switch {
		case r.err == nil && !r.dup:
			wins++
		case !errors.Is(r.err, ErrConflict):
			t.Errorf("creator %d = (%d, %v, %v), want a win or ErrConflict", i, r.seq, r.dup, r.err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d creators of one subject won, want exactly 1", wins)
	}
}

// heldAppends starts n Appends on fresh subjects while the LEDGER chain
// is held (holdChain), checks that none returns before the chain is
// released (the store has stored nothing), runs before(), releases the
// chain and returns the results.
func heldAppends(t *testing.T, s *Store, tag string, n int, before func()) []appendResult {
	t.Helper()
	ctx := context.Background()
	done := make(chan appendResult, n)
	release := holdChain(t, s, n, func(i int) {
		go func() {
			var r appendResult
			id := fmt.Sprintf("%s%d", tag, i)
			r.seq, r.dup, r.err = s.Append(ctx, testEvent(KeySubject("enc", id), id), Expect{})
			done <- r
		}()
	})
	select {
	case r := <-done:
		release()
		t.Fatalf("an Append returned (%d, %v) before the store stored anything", r.seq, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	before()
	release()
	res := make([]appendResult, n)
	for i := range res {
		res[i] = <-done
	}
	return res
}

// TestGroupCommitAckedOnlyOnDisk: the members of a group are answered
// only after the store acknowledged them and their blocks were fsynced:
// nothing returns while the chain is held, and when the fsync fails
// every member gets the error, none an ack. Concurrent appends share
// fsyncs.
func TestGroupCommitAckedOnlyOnDisk(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	w := s.ledgerBlocks
	const n = 16

	res := heldAppends(t, s, "f", n, func() {
		w.mu.Lock()
		w.fail = errors.New("injected fsync failure")
		w.mu.Unlock()
	})
	for _, r := range res {
		if r.err == nil {
			t.Errorf("Append = (%d, nil) although its fsync failed, want an error", r.seq)
		}
	}
	var syncs uint64
	res = heldAppends(t, s, "s", n, func() {
		// The block watch stays locked for a while after the chain is
		// released, so that the appends are acknowledged before the
		// first fsync whatever the machine's load.
		w.mu.Lock()
		w.fail, syncs = nil, w.syncs
		go func() { time.Sleep(300 * time.Millisecond); w.mu.Unlock() }()
	})
	for _, r := range res {
		if r.err != nil || r.seq <= n || r.seq > 2*n {
			t.Errorf("Append = (%d, %v), want a sequence in %d..%d", r.seq, r.err, n+1, 2*n)
		}
	}
	w.mu.Lock()
	rounds := w.syncs - syncs
	w.mu.Unlock()
	if rounds == 0 || rounds >= n {
		t.Errorf("%d fsync rounds for %d concurrent appends, want 1 to %d (shared)", rounds, n, n-1)
	}
	if seq, _, err := s.Append(ctx, testEvent(KeySubject("enc", "after"), "after"), Expect{}); err != nil || seq != 2*n+1 {
		t.Fatalf("Append after = (%d, %v), want (%d, nil)", seq, err, 2*n+1)
	}
}
