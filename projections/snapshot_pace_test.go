package projections

import (
	"context"
	"testing"
	"time"
)

// TestSnapshotPacing: the writer pauses nine times as long as the last
// snapshot took, except before the first delta over a new full snapshot,
// which does not wait for the full one's time.
func TestSnapshotPacing(t *testing.T) {
	t.Parallel()
	var q pacing
	steps := []struct {
		wrote           snapKind
		took            time.Duration
		fullIn, deltaIn time.Duration // the pauses after it
	}{
		{wroteNone, time.Hour, 0, 0},
		{wroteFull, 4 * time.Second, 36 * time.Second, 0},
		{wroteDelta, 300 * time.Millisecond, 2700 * time.Millisecond, 2700 * time.Millisecond},
		{wroteDelta, 500 * time.Millisecond, 4500 * time.Millisecond, 4500 * time.Millisecond},
		{wroteNone, time.Hour, 4500 * time.Millisecond, 4500 * time.Millisecond},
		{wroteFull, 5 * time.Second, 45 * time.Second, 0},
		{wroteFull, 6 * time.Second, 54 * time.Second, 0},
		{wroteDelta, 100 * time.Millisecond, 900 * time.Millisecond, 900 * time.Millisecond},
	}
	for i, s := range steps {
		q.wrote(s.wrote, s.took)
		if f, d := q.pause(wroteFull), q.pause(wroteDelta); f != s.fullIn || d != s.deltaIn {
			t.Fatalf("step %d: pauses before a full snapshot and a delta %s, %s; want %s, %s", i, f, d, s.fullIn, s.deltaIn)
		}
	}
}

// TestSnapshotNextKind: the kind the writer paces for is the kind it then
// writes: a full snapshot first, deltas while fewer than half of the keys
// changed since it, then a full one again.
func TestSnapshotNextKind(t *testing.T) {
	f := newSnapFixture(t, 53, 200)
	p := f.open(t)
	defer p.Close()
	ctx := context.Background()
	seen := map[snapKind]int{}
	for round := 0; round < 200 && seen[wroteFull] < 2; round++ {
		next := p.nextKind()
		_, kind, err := p.snapshot(ctx)
		if err != nil || kind != next {
			t.Fatalf("round %d: nextKind %d, then snapshot wrote %d, %v", round, next, kind, err)
		}
		if round == 0 && kind != wroteFull {
			t.Fatalf("the first snapshot is of kind %d, want a full one", kind)
		}
		seen[kind]++
		f.more(t, 20)
		if err := p.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if seen[wroteFull] < 2 || seen[wroteDelta] == 0 {
		t.Fatalf("snapshots written %v: want deltas and a second full one", seen)
	}
}
