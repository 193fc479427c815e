package ledger

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestScopedMsgID(t *testing.T) {
	t.Parallel()
	id := ScopedMsgID(KeySubject("e1", "a"), "X")
	// Pinned (computed by another implementation of the formula): a
	// command retried after an upgrade must get the same id, and the
	// legacy id is the one earlier versions wrote.
	if want := "uy_oL6HgXbCco2i4"; id != want {
		t.Fatalf("ScopedMsgID = %q, want %q", id, want)
	}
	if got, want := v2ScopedMsgID(KeySubject("e1", "a"), "X"), "uy_oL6HgXbCco2i4YAWSxQ"; got != want {
		t.Fatalf("v2ScopedMsgID = %q, want %q", got, want)
	}
	if got, want := legacyScopedMsgID(KeySubject("e1", "a"), "X"), "68fadf5a43e8fe8c0104d5a6660ae943381c577110c941b59a906876fa65cfd0"; got != want {
		t.Fatalf("legacyScopedMsgID = %q, want %q", got, want)
	}
	if again := ScopedMsgID(KeySubject("e1", "a"), "X"); again != id {
		t.Errorf("ScopedMsgID not deterministic: %s, %s", id, again)
	}
	others := map[string]string{
		"key":      ScopedMsgID(KeySubject("e1", "b"), "X"),
		"enclave":  ScopedMsgID(KeySubject("e2", "a"), "X"),
		"kind":     ScopedMsgID(PolicySubject("e1", "a"), "X"),
		"id":       ScopedMsgID(KeySubject("e1", "a"), "Y"),
		"boundary": ScopedMsgID(KeySubject("e1", "a")+"X", ""), // same concatenation, other split
		"raw":      "X",
		"legacy":   legacyScopedMsgID(KeySubject("e1", "a"), "X"),
		"v2":       v2ScopedMsgID(KeySubject("e1", "a"), "X"),
	}
	for what, other := range others {
		if other == id {
			t.Errorf("ScopedMsgID with another %s = the same id", what)
		}
	}
	long := strings.Repeat("x", maxIDLen)
	if got := ScopedMsgID(KeySubject(strings.Repeat("e", 80), strings.Repeat("k", 80)), long); len(got) != 16 {
		t.Errorf("ScopedMsgID of the longest inputs has %d characters, want 16", len(got))
	}
}

// An event appended before the shorter message ids (Nats-Msg-Id in the
// legacy form) is still found by Lookup, so that a command retried across
// the upgrade within the duplicates window is a replay.
func TestLookupFindsLegacyMsgID(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	a := KeySubject("e1", "a")
	msg := pipeMsg(t, a, "X")
	msg.Header.Set(nats.MsgIdHdr, legacyScopedMsgID(a, "X"))
	ack, err := s.publishLedger(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	ev, ok, err := s.Lookup(ctx, a, "X")
	if err != nil || !ok || ev.Seq != ack.Sequence || ev.CommandID != "X" {
		t.Fatalf("Lookup(a, X) = (%+v, %v, %v), want the legacy event at seq %d", ev, ok, err, ack.Sequence)
	}
	if _, ok, err := s.Lookup(ctx, a, "Y"); ok || err != nil {
		t.Errorf("Lookup(a, Y) = (%v, %v), want (false, nil)", ok, err)
	}
}

// TestAppendCommandIDScopedToAggregate: the same command id on another
// aggregate is appended; on the same aggregate it is a duplicate.
func TestAppendCommandIDScopedToAggregate(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	subjects := []string{KeySubject("e1", "a"), KeySubject("e1", "b"), KeySubject("e2", "a"), IdentitySubject("e1", "h1:x")}
	seqs := map[string]uint64{}
	for _, subj := range subjects {
		seq, dup, err := s.Append(ctx, testEvent(subj, "X"), Expect{Seq: 0})
		if err != nil || dup {
			t.Fatalf("Append(%s, X) = (%d, %v, %v), want a new event", subj, seq, dup, err)
		}
		seqs[subj] = seq
	}
	for _, subj := range subjects {
		for _, x := range []Expect{{Seq: 0}, {Seq: seqs[subj]}, {Any: true}} {
			seq, dup, err := s.Append(ctx, testEvent(subj, "X"), x)
			if err != nil || !dup || seq != seqs[subj] {
				t.Errorf("retry Append(%s, X, %+v) = (%d, %v, %v), want (%d, true, nil)", subj, x, seq, dup, err, seqs[subj])
			}
		}
	}
	if head, _ := s.Head(ctx); head != uint64(len(subjects)) {
		t.Fatalf("Head = %d, want %d: retries wrote", head, len(subjects))
	}
	// The message id on the wire is the scoped one; the envelope keeps
	// the client's id.
	m, err := s.ledger.GetMsg(ctx, seqs[subjects[1]])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Header.Get(nats.MsgIdHdr), ScopedMsgID(subjects[1], "X"); got != want {
		t.Errorf("Nats-Msg-Id = %q, want %q", got, want)
	}
	ev, err := decodeEvent(m.Data, "", m.Sequence)
	if err != nil || ev.CommandID != "X" {
		t.Errorf("envelope CommandID = %q, %v; want X", ev.CommandID, err)
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	a, b := KeySubject("e1", "a"), KeySubject("e1", "b")
	if _, ok, err := s.Lookup(ctx, a, "X"); ok || err != nil {
		t.Fatalf("Lookup before any append = (%v, %v), want (false, nil)", ok, err)
	}
	want := testEvent(a, "X")
	seq, _, err := s.Append(ctx, want, Expect{Seq: 0})
	if err != nil {
		t.Fatal(err)
	}
	ev, ok, err := s.Lookup(ctx, a, "X")
	if err != nil || !ok || ev.Seq != seq || ev.ID != want.ID || ev.CommandID != "X" || ev.Aggregate != a {
		t.Fatalf("Lookup(a, X) = (%+v, %v, %v), want the event at seq %d", ev, ok, err, seq)
	}
	for _, q := range [][2]string{{b, "X"}, {a, "Y"}, {KeySubject("e2", "a"), "X"}} {
		if _, ok, err := s.Lookup(ctx, q[0], q[1]); ok || err != nil {
			t.Errorf("Lookup(%s, %s) = (%v, %v), want (false, nil)", q[0], q[1], ok, err)
		}
	}
	for _, q := range [][2]string{{"", "X"}, {"ledger.e1.>", "X"}, {"secrets.e1.a.1", "X"}, {a, ""}, {a, "has space"}, {a, strings.Repeat("x", 257)}} {
		if _, _, err := s.Lookup(ctx, q[0], q[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("Lookup(%q, %q) err = %v, want ErrInvalid", q[0], q[1], err)
		}
	}
	if head, _ := s.Head(ctx); head != seq {
		t.Fatalf("Head = %d after lookups, want %d: a lookup wrote", head, seq)
	}
	s.Close()
	if _, _, err := s.Lookup(ctx, a, "X"); !errors.Is(err, ErrClosed) {
		t.Errorf("Lookup after Close err = %v, want ErrClosed", err)
	}
}

// BenchmarkLookup measures the duplicate lookup a command with a client
// command id costs before it is decided (a miss: the common case).
func BenchmarkLookup(b *testing.B) {
	s := openTestStore(b, "")
	ctx := context.Background()
	subj := KeySubject("e1", "a")
	if _, _, err := s.Append(ctx, testEvent(subj, "X"), Expect{Any: true}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, ok, err := s.Lookup(ctx, subj, "Y"); ok || err != nil {
			b.Fatalf("Lookup = %v, %v", ok, err)
		}
	}
}
