package ledger

import (
	"context"
	"fmt"
	"strings"
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
	leader := -1
	for wait := time.Now().Add(30 * time.Second); leader < 0; time.Sleep(20 * time.Millisecond) {
		for i, s := range tc.stores {
			if s.IsLeader() {
				leader = i
			}
		}
		if leader < 0 && time.Now().After(wait) {
			t.Fatal("no node writes LEDGER 30 s after the cluster formed")
		}
	}
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
