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

// appendsInOneGroup holds the LEDGER chain while it starts one Append per
// event, in order, so that all but the first (taken at once, then
// waiting for the chain) wait in the queue together; it then releases
// the chain and returns the results.
func appendsInOneGroup(t *testing.T, s *Store, evs []Event, xs []Expect) []appendResult {
	t.Helper()
	ctx := context.Background()
	c := s.chains.ledger
	res := make([]appendResult, len(evs))
	var wg sync.WaitGroup
	c.mu.Lock()
	for i := range evs {
		wg.Go(func() {
			res[i].seq, res[i].dup, res[i].err = s.Append(ctx, evs[i], xs[i])
		})
		// Wait until this one is queued (the first is taken at once).
		for deadline := time.Now().Add(10 * time.Second); c.q.queued() < i; {
			if time.Now().After(deadline) {
				c.mu.Unlock()
				t.Fatalf("append %d not queued", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	c.mu.Unlock()
	wg.Wait()
	return res
}

// TestGroupCommitMemberFailsAlone: in one group, a member whose
// expectation fails gets ErrConflict and a member whose command id was
// already appended gets its original sequence with dup, exactly as
// alone; every other member is stored, in order, and the chain verifies.
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
// is held, checks that none returns before the chain is released (the
// store has stored nothing), runs before(), releases the chain and
// returns the results.
func heldAppends(t *testing.T, s *Store, tag string, n int, before func()) []appendResult {
	t.Helper()
	ctx := context.Background()
	c := s.chains.ledger
	done := make(chan appendResult, n)
	c.mu.Lock()
	for i := range n {
		go func() {
			var r appendResult
			id := fmt.Sprintf("%s%d", tag, i)
			r.seq, r.dup, r.err = s.Append(ctx, testEvent(KeySubject("enc", id), id), Expect{})
			done <- r
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); c.q.queued() < n-1; {
		if time.Now().After(deadline) {
			c.mu.Unlock()
			t.Fatal("appends not queued")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case r := <-done:
		c.mu.Unlock()
		t.Fatalf("an Append returned (%d, %v) before the store stored anything", r.seq, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	before()
	c.mu.Unlock()
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
		w.mu.Lock()
		w.fail, syncs = nil, w.syncs
		w.mu.Unlock()
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
