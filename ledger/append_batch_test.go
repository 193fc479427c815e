package ledger

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestAppendBatchAllOrNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	ctx := context.Background()
	mustAppend(t, s, KeySubject("enc", "pre"), 2) // seq 1, 2

	a, b, c := KeySubject("enc", "a"), KeySubject("enc", "b"), KeySubject("enc", "c")
	evs := []Event{testEvent(a, "b1-1"), testEvent(b, "b1-2"), testEvent(a, "b1-3"), testEvent(c, "b1-4")}
	xs := []Expect{{Seq: 0}, {Seq: 0}, {Any: true}, {Subject: EnclaveWildcard("other"), Seq: 0}}
	first, last, err := s.AppendBatch(ctx, evs, xs)
	if err != nil || first != 3 || last != 6 {
		t.Fatalf("AppendBatch = (%d, %d, %v), want (3, 6, nil)", first, last, err)
	}
	var got []string
	if _, err := s.Replay(ctx, 1, func(ev Event) error { got = append(got, fmt.Sprintf("%d:%s", ev.Seq, ev.CommandID)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 || fmt.Sprint(got[2:]) != "[3:b1-1 4:b1-2 5:b1-3 6:b1-4]" {
		t.Fatalf("ledger = %v, want the batch at 3..6 in order", got)
	}

	// A failed expectation on the last event writes none of them.
	evs = []Event{testEvent(KeySubject("enc", "d"), "b2-1"), testEvent(KeySubject("enc", "e"), "b2-2"), testEvent(b, "b2-3")}
	_, _, err = s.AppendBatch(ctx, evs, []Expect{{}, {}, {Seq: 0}})
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Subject != b {
		t.Fatalf("AppendBatch with a stale expectation err = %v, want a conflict on %s", err, b)
	}
	if head, _ := s.Head(ctx); head != 6 {
		t.Fatalf("Head after a refused batch = %d, want 6", head)
	}
	// The refused batch left no message id behind either.
	if _, last, err := s.AppendBatch(ctx, evs, []Expect{{}, {}, {Seq: 4}}); err != nil || last != 9 {
		t.Fatalf("AppendBatch of the corrected batch = (%d, %v), want (9, nil)", last, err)
	}
	// A batch that repeats a stored command id writes nothing.
	_, _, err = s.AppendBatch(ctx, []Event{testEvent(KeySubject("enc", "f"), "b3-1"), testEvent(a, "b1-1")}, []Expect{{Any: true}, {Any: true}})
	if !errors.Is(err, ErrBatchDuplicate) {
		t.Fatalf("AppendBatch with a used command id err = %v, want ErrBatchDuplicate", err)
	}
	// Plain appends chain on after batches.
	if seq, _, err := s.Append(ctx, testEvent(c, "after"), Expect{Seq: 6}); err != nil || seq != 10 {
		t.Fatalf("Append after the batches = (%d, %v), want (10, nil)", seq, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyDir(t, dir, VerifyOptions{})
	if err != nil || rep.Ledger.Last != 10 {
		t.Fatalf("Verify = (%+v, %v), want a valid chain to 10", rep, err)
	}
}

func TestAppendBatchRefusesBadInput(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	a := KeySubject("enc", "a")
	for name, tc := range map[string]struct {
		evs []Event
		xs  []Expect
	}{
		"Empty":              {nil, nil},
		"Mismatched":         {[]Event{testEvent(a, "x1")}, nil},
		"SubjectTwice":       {[]Event{testEvent(a, "x1"), testEvent(a, "x2")}, []Expect{{}, {Seq: 1}}},
		"BadSubject":         {[]Event{testEvent("nope", "x1")}, []Expect{{Any: true}}},
		"BadExpectSubject":   {[]Event{testEvent(a, "x1")}, []Expect{{Subject: "other.>"}}},
		"TooMany":            {make([]Event, MaxBatch+1), make([]Expect, MaxBatch+1)},
		"CommandIDWithSpace": {[]Event{testEvent(a, "x 1")}, []Expect{{Any: true}}},
	} {
		if _, _, err := s.AppendBatch(ctx, tc.evs, tc.xs); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if head, _ := s.Head(ctx); head != 0 {
		t.Fatalf("Head = %d after refused batches, want 0", head)
	}
}
