package ledger

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestStoredBatchRecognisesOnlyTheWholeBatch: a forwarded batch retried
// after a lost answer and refused as a duplicate counts as stored only
// when its first and last messages are stored as one run of its length.
func TestStoredBatchRecognisesOnlyTheWholeBatch(t *testing.T) {
	s := openTestStore(t, "")
	ctx := context.Background()
	evs := make([]Event, 3)
	for i := range evs {
		evs[i] = testEvent(KeySubject("enc", fmt.Sprintf("sb%d", i)), fmt.Sprintf("sb-cmd-%d", i))
	}
	_, last, err := s.AppendBatch(ctx, evs, make([]Expect, len(evs)))
	if err != nil {
		t.Fatal(err)
	}
	msgOf := func(ev Event) *nats.Msg {
		m := nats.NewMsg(ev.Aggregate)
		m.Header.Set(jetstream.MsgIDHeader, ev.CommandID)
		return m
	}
	w := &writer{s: s}
	whole := []*nats.Msg{msgOf(evs[0]), msgOf(evs[1]), msgOf(evs[2])}
	if got, ok := w.storedBatch(ctx, whole); !ok || got != last {
		t.Fatalf("storedBatch(the stored batch) = %d, %v; want %d, true", got, ok, last)
	}
	other := testEvent(KeySubject("enc", "sb-new"), "sb-cmd-new")
	for name, msgs := range map[string][]*nats.Msg{
		"last message not stored": {msgOf(evs[0]), msgOf(evs[1]), msgOf(other)},
		"a run of another length": {msgOf(evs[0]), msgOf(evs[2])},
		"nothing stored":          {msgOf(other)},
	} {
		if got, ok := w.storedBatch(ctx, msgs); ok {
			t.Errorf("%s: storedBatch = %d, true; want false", name, got)
		}
	}
	if h, _ := s.Head(ctx); h != last {
		t.Fatalf("head after the probes = %d, want %d (a probe never writes)", h, last)
	}
}

// TestClusterWriterTakesOverWhileChainBusy: a node elected LEDGER leader
// starts writing the stream even while its chain's mutex is held (as a
// checkpoint or a publish holds it across a request to a leader that
// died), and every node's appends go through it. Before, the takeover
// waited for the mutex: with a checkpoint count blocked 30 s on a
// leaderless stream, writes stopped for 30 s after a leader's kill -9.
func TestClusterWriterTakesOverWhileChainBusy(t *testing.T) {
	tc := startCluster(t)
	leader := waitWriter(t, tc, ledgerStream)
	next := (leader + 1) % 3
	busy := tc.stores[next].chains.ledger
	busy.mu.Lock()
	locked := true
	defer func() {
		if locked {
			busy.mu.Unlock()
		}
	}()
	req := fmt.Sprintf(`{"placement":{"preferred":"n%d"}}`, next+1)
	m, err := tc.stores[leader].nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+ledgerStream, []byte(req), 10*time.Second)
	if err != nil {
		t.Fatalf("stream leader step-down: %v", err)
	}
	if !strings.Contains(string(m.Data), `"success":true`) {
		t.Fatalf("stream leader step-down answered %s", m.Data)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !tc.stores[next].IsLeader() {
		if time.Now().After(deadline) {
			t.Fatalf("n%d leads LEDGER but did not start writing it within 20 s while its chain's mutex was held", next+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	busy.mu.Unlock()
	locked = false
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var seqs []uint64
	for i, s := range tc.stores {
		seq, _, err := s.Append(ctx, testEvent(KeySubject("enc", fmt.Sprintf("takeover%d", i)), fmt.Sprintf("takeover-cmd-%d", i)), Expect{})
		if err != nil {
			t.Fatalf("append through n%d after the takeover: %v", i+1, err)
		}
		seqs = append(seqs, seq)
	}
	if seqs[0] == seqs[1] || seqs[1] == seqs[2] || seqs[0] == seqs[2] {
		t.Fatalf("appends through the three nodes got sequences %v, want three distinct", seqs)
	}
	if _, err := tc.stores[next].Verify(ctx, VerifyOptions{}); err != nil {
		t.Fatalf("chain after the takeover: %v", err)
	}
}

// TestClusterForwardSkipsHungWriter: a node that hangs keeps its writer
// subscription in the others' interest until their routes to it time out.
// A forwarder that knows the stream's leader sends to it by name, so a
// stale queue member (here nine that never answer, on the forwarding node
// itself) gets no forwarded write, for LEDGER's appends and AUDIT's
// batches alike; and a named leader that does not serve falls back to the
// queue group.
func TestClusterForwardSkipsHungWriter(t *testing.T) {
	tc := startCluster(t)
	for _, stream := range []string{ledgerStream, auditStream} {
		t.Run(stream, func(t *testing.T) { forwardSkipsHungWriter(t, tc, stream) })
	}
}

func forwardSkipsHungWriter(t *testing.T, tc *testCluster, stream string) {
	writer := waitWriter(t, tc, stream)
	f := tc.stores[(writer+1)%3]
	w := f.chains.ledger.w
	want := fmt.Sprintf("n%d", writer+1)
	for deadline := time.Now().Add(30 * time.Second); w.leader(stream).node != want; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the follower names %q as %s's leader, want %s", w.leader(stream).node, stream, want)
		}
	}
	cred, err := newClusterCred(tc.secret, "x")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("", nats.InProcessServer(f.ns), nats.UserInfo(clientUser, cred.clientPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var stale atomic.Int64
	for range 9 {
		if _, err := nc.QueueSubscribe(writerSubject(stream), "writer", func(*nats.Msg) { stale.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := f.NewAuditor(AuditConfig{Sync: true})
	defer a.Close()
	write := func(i int) error {
		if stream == auditStream {
			return a.Record(ctx, auditRecord(i))
		}
		_, _, err := f.Append(ctx, testEvent(KeySubject("enc", fmt.Sprintf("hung%d", i)), fmt.Sprintf("hung-cmd-%d", i)), Expect{})
		return err
	}
	for i := range 10 {
		if err := write(i); err != nil {
			t.Fatalf("write %d to %s through the follower: %v", i, stream, err)
		}
	}
	if n := stale.Load(); n != 0 {
		t.Fatalf("%d forwarded writes went to the stale queue members", n)
	}
	// A named leader that serves nothing: the queue group (the stale
	// members gone) stores the write.
	nc.Close()
	w.leaderElected(stream, "nobody")
	if err := write(10); err != nil {
		t.Fatalf("write to %s with a named leader that does not serve: %v", stream, err)
	}
}

// waitWriter returns the index of the node that writes stream.
func waitWriter(t *testing.T, tc *testCluster, stream string) int {
	t.Helper()
	for wait := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for i, s := range tc.stores {
			if s.chains.ledger.w.writes(stream) {
				return i
			}
		}
		if time.Now().After(wait) {
			t.Fatalf("no node writes %s 30 s after the cluster formed", stream)
		}
	}
}

// TestLeaderElectedRefusesNonNames: a leader name that is no node name (a
// subject wildcard, a dot, empty) is recorded as unknown, so forwarding
// goes to the queue group instead of a subject built from it.
func TestLeaderElectedRefusesNonNames(t *testing.T) {
	w := &writer{leaders: map[string]leaderName{}, elected: map[string]election{}}
	for _, bad := range []string{"", "*", ">", "n1.x", "n 1", strings.Repeat("n", maxNameLen+1)} {
		w.leaderElected(ledgerStream, "n1")
		w.leaderElected(ledgerStream, bad)
		if got := w.leader(ledgerStream).node; got != "" {
			t.Errorf("leaderElected(%q) recorded %q, want unknown", bad, got)
		}
	}
	w.leaderElected(ledgerStream, "node-2_b")
	if got := w.leader(ledgerStream).node; got != "node-2_b" {
		t.Errorf("leaderElected(node-2_b) recorded %q", got)
	}
}
