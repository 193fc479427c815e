package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestAppendCreateOnce(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	subj := KeySubject("enc", "k1")

	seq, dup, err := s.Append(ctx, testEvent(subj, "c1"), Expect{Seq: 0})
	if err != nil || dup || seq != 1 {
		t.Fatalf("first Append = (%d, %v, %v), want (1, false, nil)", seq, dup, err)
	}
	_, _, err = s.Append(ctx, testEvent(subj, "c2"), Expect{Seq: 0})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second Append(Expect{Seq:0}) err = %v, want ErrConflict", err)
	}
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Subject != subj || ce.Expected != 0 {
		t.Fatalf("second Append err = %#v, want *ConflictError{%s, 0}", err, subj)
	}
	// The expectation that matches succeeds.
	if seq, _, err := s.Append(ctx, testEvent(subj, "c3"), Expect{Seq: 1}); err != nil || seq != 2 {
		t.Fatalf("Append(Expect{Seq:1}) = (%d, %v), want (2, nil)", seq, err)
	}
	if head, err := s.Head(ctx); err != nil || head != 2 {
		t.Fatalf("Head() = (%d, %v), want (2, nil)", head, err)
	}
}

func TestAppendRaceExactlyOneWins(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	subj := KeySubject("enc", "raced")

	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			<-start
			_, _, errs[i] = s.Append(ctx, testEvent(subj, fmt.Sprintf("race-%d", i)), Expect{})
		})
	}
	close(start)
	wg.Wait()

	var wins, conflicts int
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, ErrConflict):
			conflicts++
		default:
			t.Errorf("writer %d err = %v, want nil or ErrConflict", i, err)
		}
	}
	if wins != 1 || conflicts != writers-1 {
		t.Fatalf("wins, conflicts = %d, %d, want 1, %d", wins, conflicts, writers-1)
	}
	if last, err := s.LastSeq(ctx, subj); err != nil || last != 1 {
		t.Fatalf("LastSeq(%s) = (%d, %v), want (1, nil)", subj, last, err)
	}
}

func TestAppendEnclaveWildcardExpectation(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	wild := EnclaveWildcard("enc")

	seq, _, err := s.Append(ctx, testEvent(KeySubject("enc", "a"), "w1"), Expect{Subject: wild, Seq: 0})
	if err != nil {
		t.Fatalf("Append(key a) err = %v", err)
	}
	// Another enclave does not move enc's wildcard.
	if _, _, err := s.Append(ctx, testEvent(KeySubject("other", "a"), "w2"), Expect{Any: true}); err != nil {
		t.Fatalf("Append(other enclave) err = %v", err)
	}
	// A write to another aggregate of enc...
	if _, _, err := s.Append(ctx, testEvent(PolicySubject("enc", "p"), "w3"), Expect{Any: true}); err != nil {
		t.Fatalf("Append(policy p) err = %v", err)
	}
	// ...is seen by an enclave-wide expectation taken before it.
	_, _, err = s.Append(ctx, testEvent(KeySubject("enc", "b"), "w4"), Expect{Subject: wild, Seq: seq})
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Subject != wild || ce.Expected != seq {
		t.Fatalf("Append with stale enclave expectation err = %v, want *ConflictError{%s, %d}", err, wild, seq)
	}
	last, err := s.LastSeq(ctx, wild)
	if err != nil || last != 3 {
		t.Fatalf("LastSeq(%s) = (%d, %v), want (3, nil)", wild, last, err)
	}
	if _, _, err := s.Append(ctx, testEvent(KeySubject("enc", "b"), "w5"), Expect{Subject: wild, Seq: last}); err != nil {
		t.Fatalf("Append with fresh enclave expectation err = %v, want nil", err)
	}
}

func TestAppendDuplicateCommandID(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	subj := KeySubject("enc", "dup")

	seq1, dup, err := s.Append(ctx, testEvent(subj, "cmd-1"), Expect{Seq: 0})
	if err != nil || dup {
		t.Fatalf("first Append = (%d, %v, %v), want (_, false, nil)", seq1, dup, err)
	}
	tests := []struct {
		name string
		x    Expect
	}{
		{"same stale expectation", Expect{Seq: 0}},
		{"no expectation", Expect{Any: true}},
		{"current expectation", Expect{Seq: seq1}},
		{"wildcard expectation", Expect{Subject: EnclaveWildcard("enc"), Seq: 99}},
	}
	for _, tt := range tests {
		seq, dup, err := s.Append(ctx, testEvent(subj, "cmd-1"), tt.x)
		if err != nil || !dup || seq != seq1 {
			t.Errorf("%s: retried Append = (%d, %v, %v), want (%d, true, nil)", tt.name, seq, dup, err, seq1)
		}
	}
	if head, err := s.Head(ctx); err != nil || head != 1 {
		t.Fatalf("Head() = (%d, %v), want (1, nil): a duplicate was stored", head, err)
	}
	n := 0
	if _, err := s.Replay(ctx, 0, func(Event) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("Replay delivered %d events (err %v), want 1", n, err)
	}
}

func TestAppendInvalid(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	good := testEvent(KeySubject("enc", "k"), "c")
	tests := []struct {
		name string
		edit func(*Event)
		x    Expect
	}{
		{"empty aggregate", func(e *Event) { e.Aggregate = "" }, Expect{}},
		{"aggregate outside ledger", func(e *Event) { e.Aggregate = "secrets.enc.k.1" }, Expect{}},
		{"wildcard aggregate", func(e *Event) { e.Aggregate = "ledger.enc.>" }, Expect{}},
		{"empty token", func(e *Event) { e.Aggregate = "ledger.enc..k" }, Expect{}},
		{"space in aggregate", func(e *Event) { e.Aggregate = "ledger.enc.key.a b" }, Expect{}},
		{"empty type", func(e *Event) { e.Type = "" }, Expect{}},
		{"newline in type", func(e *Event) { e.Type = "a\r\nX-Evil: 1" }, Expect{}},
		{"empty command id", func(e *Event) { e.CommandID = "" }, Expect{}},
		{"space in command id", func(e *Event) { e.CommandID = dedupeProbeID }, Expect{}},
		{"expectation outside ledger", func(*Event) {}, Expect{Subject: "secrets.>"}},
	}
	for _, tt := range tests {
		ev := good
		tt.edit(&ev)
		if _, _, err := s.Append(ctx, ev, tt.x); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Append err = %v, want ErrInvalid", tt.name, err)
		}
	}
	if head, _ := s.Head(ctx); head != 0 {
		t.Fatalf("Head() = %d after invalid appends, want 0", head)
	}
}

func TestLastSeq(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	mustAppend(t, s, KeySubject("enc", "a"), 2)           // 1, 2
	mustAppend(t, s, IdentitySubject("enc", "h1:xyz"), 1) // 3
	mustAppend(t, s, EnclaveSubject("enc"), 1)            // 4
	tests := []struct {
		subject string
		want    uint64
	}{
		{KeySubject("enc", "a"), 2},
		{KeySubject("enc", "none"), 0},
		{IdentitySubject("enc", "h1:xyz"), 3},
		{EnclaveWildcard("enc"), 3},
		{"ledger.enc.key.*", 2},
		{EnclaveSubject("enc"), 4},
		{"ledger.>", 4},
		{EnclaveWildcard("nobody"), 0},
	}
	for _, tt := range tests {
		got, err := s.LastSeq(ctx, tt.subject)
		if err != nil || got != tt.want {
			t.Errorf("LastSeq(%q) = (%d, %v), want (%d, nil)", tt.subject, got, err, tt.want)
		}
	}
	if _, err := s.LastSeq(ctx, "other.>"); !errors.Is(err, ErrInvalid) {
		t.Errorf("LastSeq(other.>) err = %v, want ErrInvalid", err)
	}
}
