package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// shortenDuplicates makes the server forget LEDGER message ids after
// 100 ms (its least window), so that a test sees Lookup past it.
func shortenDuplicates(t *testing.T, s *Store) {
	t.Helper()
	cfg := ledgerConfig(s.replicas, 100*time.Millisecond)
	if _, err := s.js.UpdateStream(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
}

// waitForgotten waits until the server's duplicates window no longer
// holds id on subject.
func waitForgotten(t *testing.T, s *Store, subject, id string) {
	t.Helper()
	waitFor(t, 30*time.Second, func() bool {
		_, ok, err := s.probe(context.Background(), subject, id, nil)
		return err == nil && !ok
	})
}

// TestLookupPastDuplicatesWindow: once the server has forgotten a
// message id, Lookup still finds the event among the aggregate's own
// events (the current and the legacy id), finds nothing for other ids or
// aggregates, writes nothing, and forgets the id after the replay window.
func TestLookupPastDuplicatesWindow(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	shortenDuplicates(t, s)
	a, b := KeySubject("e1", "a"), KeySubject("e1", "b")
	mustAppend(t, s, a, 3) // events before, so that Lookup reads past them
	seqX, _, err := s.Append(ctx, testEvent(a, "X"), Expect{Any: true})
	if err != nil {
		t.Fatal(err)
	}
	legacy := pipeMsg(t, a, "L")
	legacy.Header.Set(nats.MsgIdHdr, legacyScopedMsgID(a, "L"))
	ack, err := s.publishLedger(ctx, legacy)
	if err != nil {
		t.Fatal(err)
	}
	v2 := pipeMsg(t, a, "V")
	v2.Header.Set(nats.MsgIdHdr, v2ScopedMsgID(a, "V"))
	ackV2, err := s.publishLedger(ctx, v2)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, a, 2)
	mustAppend(t, s, b, 2)
	waitForgotten(t, s, a, ScopedMsgID(a, "X"))
	waitForgotten(t, s, a, legacyScopedMsgID(a, "L"))
	waitForgotten(t, s, a, v2ScopedMsgID(a, "V"))
	head, _ := s.Head(ctx)

	for id, seq := range map[string]uint64{"X": seqX, "L": ack.Sequence, "V": ackV2.Sequence} {
		ev, ok, err := s.Lookup(ctx, a, id)
		if err != nil || !ok || ev.Seq != seq || ev.CommandID != id || ev.Aggregate != a {
			t.Errorf("Lookup(a, %s) past the window = (%+v, %v, %v), want the event at seq %d", id, ev, ok, err, seq)
		}
	}
	for _, q := range [][2]string{{a, "Y"}, {b, "X"}, {KeySubject("e2", "a"), "X"}} {
		if _, ok, err := s.Lookup(ctx, q[0], q[1]); ok || err != nil {
			t.Errorf("Lookup(%s, %s) = (%v, %v), want (false, nil)", q[0], q[1], ok, err)
		}
	}
	if h, _ := s.Head(ctx); h != head {
		t.Fatalf("Head = %d after lookups, want %d: a lookup wrote", h, head)
	}
	// Past the replay window the id is a new command's.
	s.replayWindow = time.Millisecond
	time.Sleep(5 * time.Millisecond)
	if _, ok, err := s.Lookup(ctx, a, "X"); ok || err != nil {
		t.Errorf("Lookup(a, X) past the replay window = (%v, %v), want (false, nil)", ok, err)
	}
}

// TestLookupScanBounded: an aggregate with more events in the replay
// window than Lookup may read answers ErrLookupTooLong for an id it does
// not reach, never "not applied"; ids within the bound are still found.
func TestLookupScanBounded(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	shortenDuplicates(t, s)
	a := KeySubject("e1", "a")
	var seqs []uint64
	for i := range 6 {
		seq, _, err := s.Append(ctx, testEvent(a, fmt.Sprintf("c%d", i)), Expect{Any: true})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	waitForgotten(t, s, a, ScopedMsgID(a, "c5"))
	s.scanMax = 5
	if ev, ok, err := s.Lookup(ctx, a, "c4"); err != nil || !ok || ev.Seq != seqs[4] {
		t.Errorf("Lookup(a, c4) = (%d, %v, %v), want seq %d", ev.Seq, ok, err, seqs[4])
	}
	for _, id := range []string{"c5", "missing"} {
		if _, ok, err := s.Lookup(ctx, a, id); ok || !errors.Is(err, ErrLookupTooLong) {
			t.Errorf("Lookup(a, %s) = (%v, %v), want ErrLookupTooLong", id, ok, err)
		}
	}
}

// TestClusterShortDuplicatesWindow: in a cluster, Lookup on any node finds
// an event past the duplicates window (read from the stream's leader), and
// a forwarded message is not sent again once resendHorizon has passed
// since its first send: the write fails with ErrUnavailable although the
// caller's context has not ended.
func TestClusterShortDuplicatesWindow(t *testing.T) {
	tc := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	writer := waitWriter(t, tc, ledgerStream)
	f := tc.stores[(writer+1)%3]
	shortenDuplicates(t, f)
	a := KeySubject("e1", "window")
	seq, _, err := f.Append(ctx, testEvent(a, "X"), Expect{})
	if err != nil {
		t.Fatal(err)
	}
	waitForgotten(t, f, a, ScopedMsgID(a, "X"))
	for i, s := range tc.stores {
		ev, ok, err := s.Lookup(ctx, a, "X")
		if err != nil || !ok || ev.Seq != seq {
			t.Errorf("node %d: Lookup(a, X) past the window = (%d, %v, %v), want seq %d", i+1, ev.Seq, ok, err, seq)
		}
	}

	f.resendHorizon = 2 * time.Second
	req := nats.NewMsg(writerSubject("NOWRITER"))
	req.Data = []byte("x")
	_, err = f.chains.ledger.w.request(ctx, "NOWRITER", req)
	if !errors.Is(err, ErrUnavailable) || ctx.Err() != nil || !strings.Contains(err.Error(), "within 2s") {
		t.Fatalf("forward to a stream without a writer: err = %v (context: %v), want ErrUnavailable after the horizon", err, ctx.Err())
	}
}

// TestChainResendStopsAtHorizon: in a cluster a chained publish whose
// outcome stays unknown (here: a server without JetStream, so no stream
// ever answers) is not sent again once resendHorizon has passed since
// its first send: ErrUnavailable before the caller's context ends.
func TestChainResendStopsAtHorizon(t *testing.T) {
	s := openTestStore(t, "")
	mustAppend(t, s, KeySubject("enc", "k"), 1)
	js, err := jetstream.New(bareServer(t))
	if err != nil {
		t.Fatal(err)
	}
	c := &chainHead{name: ledgerStream, stream: s.ledger, log: s.log, clustered: true, resend: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.mu.Lock()
	_, err = c.publishLocked(ctx, js, pipeMsg(t, KeySubject("enc", "k2"), "H"), true)
	c.mu.Unlock()
	if !errors.Is(err, ErrUnavailable) || ctx.Err() != nil || !strings.Contains(err.Error(), "resend horizon") {
		t.Fatalf("publish that never gets an answer: err = %v (context: %v), want ErrUnavailable at the horizon", err, ctx.Err())
	}
}

// TestOpenDuplicateWindow: Config.DuplicateWindow becomes LEDGER's
// duplicates window and halves into the resend horizon; one under the
// server's least (100 ms) is refused before anything opens, leaving the
// directory free.
func TestOpenDuplicateWindow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Open(context.Background(), Config{Dir: dir, DuplicateWindow: 50 * time.Millisecond}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Open with a 50ms window err = %v, want ErrInvalid", err)
	}
	s, err := Open(context.Background(), Config{Dir: dir, DuplicateWindow: 3 * time.Second})
	if err != nil {
		t.Fatalf("Open after the refused one: %v", err)
	}
	defer s.Close()
	info, err := s.ledger.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Duplicates != 3*time.Second || s.resendHorizon != 1500*time.Millisecond {
		t.Errorf("window %v, resend horizon %v; want 3s and 1.5s", info.Config.Duplicates, s.resendHorizon)
	}
}

// TestSingleNodeDuplicateWindow: a single node's LEDGER remembers message
// ids for singleDuplicateWindow, which the server reads again at every
// start; a directory whose LEDGER still has another window (an earlier
// version's 2 minutes) gets it at its next open. A cluster keeps
// duplicateWindow (TestClusterReplicatesAndEveryNodeAppends).
func TestSingleNodeDuplicateWindow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(context.Background(), Config{Dir: dir, DuplicateWindow: duplicateWindow})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	info, err := s.ledger.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.dupWindow != singleDuplicateWindow || info.Config.Duplicates != singleDuplicateWindow {
		t.Errorf("reopened without a window: store %v, LEDGER %v; want %v", s.dupWindow, info.Config.Duplicates, singleDuplicateWindow)
	}
}
