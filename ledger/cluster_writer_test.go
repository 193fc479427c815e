package ledger

import (
	"context"
	"fmt"
	"testing"

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
