package ledger

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// storedHeaders returns the headers the server stored with LEDGER
// message seq.
func storedHeaders(t *testing.T, s *Store, seq uint64) nats.Header {
	t.Helper()
	m, err := s.ledger.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatalf("get LEDGER %d: %v", seq, err)
	}
	if m.Header == nil {
		return nats.Header{}
	}
	return m.Header
}

func TestRecentWritesWindow(t *testing.T) {
	w := newRecentWrites()
	w.reset(10)
	if !w.unwritten("a", 10, 10) || w.unwritten("a", 9, 10) {
		t.Fatal("an empty window after 10 must prove sequence 10 and nothing before it")
	}
	w.add(11, "a")
	w.add(12, "b")
	for _, c := range []struct {
		subject  string
		at, head uint64
		want     bool
	}{
		{"a", 10, 12, false}, // written at 11
		{"a", 11, 12, true},
		{"b", 11, 12, false},
		{"c", 10, 12, true},
		{"c", 10, 13, false}, // the head stored something the window does not hold
		{"c", 13, 12, false}, // after the head
		{"c", 9, 12, false},  // before the window
	} {
		if got := w.unwritten(c.subject, c.at, c.head); got != c.want {
			t.Errorf("unwritten(%q, at %d, head %d) = %v, want %v", c.subject, c.at, c.head, got, c.want)
		}
	}
	w.add(14, "c") // a gap: 13 was stored without the window
	if w.unwritten("x", 12, 14) || !w.unwritten("x", 14, 14) {
		t.Error("after a gap the window must start after the new sequence")
	}

	w.reset(0)
	n := uint64(recentSubjects + 5)
	for i := uint64(1); i <= n; i++ {
		w.add(i, fmt.Sprintf("s%d", i%7))
	}
	if w.unwritten("z", 4, n) || !w.unwritten("z", 5, n) {
		t.Errorf("after %d messages the window must be (5, %d]", n, n)
	}
	if len(w.last) != 7 || len(w.ring) != recentSubjects {
		t.Errorf("window holds %d subjects in %d entries, want 7 in %d", len(w.last), len(w.ring), recentSubjects)
	}
	last := fmt.Sprintf("s%d", n%7)
	if w.unwritten(last, n-1, n) || !w.unwritten(last, n, n) {
		t.Errorf("%s was written at %d", last, n)
	}
}

// TestSubjectExpectationDecidedByTheHead: on a single node an append
// whose expectation was read at a known sequence is stored without the
// header when the head proves it, and refused when the subject was
// written since; whatever the head cannot prove keeps the header.
func TestSubjectExpectationDecidedByTheHead(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	hasExpect := func(s *Store, seq uint64) bool {
		h := storedHeaders(t, s, seq)
		if h.Get(expectAtHeader) != "" {
			t.Fatalf("LEDGER %d stored with %s", seq, expectAtHeader)
		}
		return h.Get(jetstream.ExpectedLastSubjSeqHeader) != ""
	}
	k := KeySubject("enc", "k")
	seq1, _, err := s.Append(ctx, testEvent(k, "c1"), Expect{Seq: 0, At: 0})
	if err != nil || !hasExpect(s, seq1) {
		t.Fatalf("append without At: %v; want it stored with the header", err)
	}
	seq2, _, err := s.Append(ctx, testEvent(k, "c2"), Expect{Seq: seq1, At: seq1})
	if err != nil || hasExpect(s, seq2) {
		t.Fatalf("append read at the head: %v; want it stored without the header", err)
	}
	// Read before seq2 was written: the head knows it moved.
	_, _, err = s.Append(ctx, testEvent(k, "c3"), Expect{Seq: seq1, At: seq1})
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("append read before the subject's last write: %v, want a conflict", err)
	}
	// Another subject read at seq1 is unwritten since.
	seq3, _, err := s.Append(ctx, testEvent(KeySubject("enc", "k2"), "c4"), Expect{Seq: 0, At: seq1})
	if err != nil || hasExpect(s, seq3) {
		t.Fatalf("new subject read at %d: %v; want it stored without the header", seq1, err)
	}
	// A sequence after the head is nothing the head knows.
	seq4, _, err := s.Append(ctx, testEvent(KeySubject("enc", "k3"), "c5"), Expect{Seq: 0, At: seq3 + 100})
	if err != nil || !hasExpect(s, seq4) {
		t.Fatalf("At after the head: %v; want it stored with the header", err)
	}
	// An expected sequence after At is not a subject's last as of At.
	_, _, err = s.Append(ctx, testEvent(KeySubject("enc", "k4"), "c6"), Expect{Seq: seq4, At: seq3})
	if !errors.As(err, &ce) {
		t.Fatalf("Seq after At on an empty subject: %v, want the server's conflict", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A reopened head knows nothing before its load.
	s = openTestStore(t, dir)
	seq5, _, err := s.Append(ctx, testEvent(KeySubject("enc", "k5"), "c7"), Expect{Seq: 0, At: seq4 - 1})
	if err != nil || !hasExpect(s, seq5) {
		t.Fatalf("At before the load: %v; want it stored with the header", err)
	}
	seq6, _, err := s.Append(ctx, testEvent(KeySubject("enc", "k6"), "c8"), Expect{Seq: 0, At: seq5})
	if err != nil || hasExpect(s, seq6) {
		t.Fatalf("At after the load: %v; want it stored without the header", err)
	}
	if _, err := s.Verify(ctx, VerifyOptions{}); err != nil {
		t.Fatal(err)
	}

	// A node with a network listener is not the only writer.
	l, err := Open(ctx, Config{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seq, _, err := l.Append(ctx, testEvent(k, "c9"), Expect{Seq: 0, At: 0})
	if err == nil {
		seq, _, err = l.Append(ctx, testEvent(KeySubject("enc", "kl"), "c10"), Expect{Seq: 0, At: seq})
	}
	if err != nil || !hasExpect(l, seq) {
		t.Fatalf("node with a listener: %v; want every expectation sent", err)
	}
}

// TestPipelinedMembersBoundUntilAnAnswer: after the head is loaded,
// pipelined members are bound to their predecessor's message id until a
// message sent after the load has its answer; then they carry only their
// expected last sequence, and a refused member still refuses those
// after it.
func TestPipelinedMembersBoundUntilAnAnswer(t *testing.T) {
	s := openTestStore(t, "")
	ctx := context.Background()
	mustAppend(t, s, KeySubject("enc", "base"), 1)
	c := s.chains.ledger
	c.mu.Lock()
	c.markStale()
	c.mu.Unlock()
	group := func(msgs ...*nats.Msg) []*groupReq {
		var rs []*groupReq
		for _, m := range msgs {
			raw := RawMessage{Subject: m.Subject, Type: m.Header.Get(TypeHeader), Body: m.Data}
			rs = append(rs, &groupReq{ctx: ctx, msg: m, sum: raw.bodySum(), done: make(chan struct{})})
		}
		c.commitGroup(s.js, rs, func() []*groupReq { return nil })
		for _, r := range rs {
			<-r.done
		}
		return rs
	}
	bound := func(rs []*groupReq) []bool {
		var b []bool
		for _, r := range rs {
			if r.err != nil {
				t.Fatalf("member: %v", r.err)
			}
			b = append(b, storedHeaders(t, s, r.ack.Sequence).Get(jetstream.ExpectedLastMsgIDHeader) != "")
		}
		return b
	}
	after := group(pipeMsg(t, KeySubject("enc", "a"), "a"), pipeMsg(t, KeySubject("enc", "b"), "b"), pipeMsg(t, KeySubject("enc", "c"), "c"))
	if got := fmt.Sprint(bound(after)); got != "[false true true]" {
		t.Errorf("first group after a load: bound %s, want [false true true]", got)
	}
	steady := group(pipeMsg(t, KeySubject("enc", "d"), "d"), pipeMsg(t, KeySubject("enc", "e"), "e"), pipeMsg(t, KeySubject("enc", "f"), "f"))
	if got := fmt.Sprint(bound(steady)); got != "[false false false]" {
		t.Errorf("group after an answer: bound %s, want [false false false]", got)
	}
	for _, r := range steady[1:] {
		if storedHeaders(t, s, r.ack.Sequence).Get(jetstream.ExpectedLastSeqHeader) == "" {
			t.Errorf("member at %d stored without its expected last sequence", r.ack.Sequence)
		}
	}

	// A member refused in the middle: the one after it is stored alone,
	// right after the first.
	refused := pipeMsg(t, KeySubject("enc", "a"), "g")
	refused.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "1") // "a" is at after[0]
	rs := group(pipeMsg(t, KeySubject("enc", "h"), "h"), refused, pipeMsg(t, KeySubject("enc", "i"), "i"))
	if rs[0].err != nil || rs[2].err != nil || rs[1].err == nil {
		t.Fatalf("members: %v, %v, %v; want the middle one refused", rs[0].err, rs[1].err, rs[2].err)
	}
	if rs[2].ack.Sequence != rs[0].ack.Sequence+1 {
		t.Errorf("member after the refused one at %d, want %d", rs[2].ack.Sequence, rs[0].ack.Sequence+1)
	}
	if _, err := s.Verify(ctx, VerifyOptions{}); err != nil {
		t.Fatalf("chain: %v", err)
	}
}
