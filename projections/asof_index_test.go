package projections

import (
	"context"
	mrand "math/rand/v2"
	"testing"
	"time"
)

// TestStateAtIndexEqualsReplay: the projection's StateAt, served from the
// index of encoded states (spaced closely and over a small budget, so
// that it thins them), gives the state a full replay gives, at many
// random sequences and times, while the ledger grows between queries.
func TestStateAtIndexEqualsReplay(t *testing.T) {
	ctx := context.Background()
	f := newSnapFixture(t, 11, 300)
	p, err := OpenWith(ctx, f.store, nil, nil, Options{TimeTravelEvery: 8, TimeTravelBudget: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rng := mrand.New(mrand.NewPCG(11, 2))
	for round := range 4 {
		head, err := f.store.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for range 25 {
			seq := 1 + rng.Uint64N(head)
			want, err := StateAt(ctx, f.store, seq, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.StateAt(ctx, seq, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			sameState(t, "seq", got, noSubjects(want))
			e := pick(f.g, f.g.enclaves)
			if got, err = p.EnclaveStateAt(ctx, seq, time.Time{}, e); err != nil {
				t.Fatal(err)
			}
			sameState(t, "enclave "+e, got, only(want, e))
			at := asofT0.Add(time.Duration(rng.Int64N(int64(head)+5)) * time.Second)
			if rng.IntN(2) == 0 {
				at = at.Add(time.Duration(rng.Int64N(int64(time.Second))))
			}
			want, err = StateAt(ctx, f.store, 0, at)
			if err != nil {
				t.Fatal(err)
			}
			if got, err = p.StateAt(ctx, 0, at); err != nil {
				t.Fatal(err)
			}
			sameState(t, "time "+at.Format(time.RFC3339Nano), got, noSubjects(want))
		}
		if round == 0 && len(p.asof.points) < 2 {
			t.Fatalf("the index kept %d states, want several", len(p.asof.points))
		}
		f.more(t, 150)
	}
	if p.asof.every == 8 || p.asof.bytes > 64<<10 {
		t.Errorf("index: every %d, %d bytes; want it thinned under the budget", p.asof.every, p.asof.bytes)
	}
	if _, err := p.StateAt(ctx, 1<<40, time.Time{}); err == nil {
		t.Error("StateAt(beyond the head) err = nil")
	}
}

// noSubjects is st without its Subjects, which past states from the
// index do not keep.
func noSubjects(st *State) *State {
	st.Subjects = map[string]uint64{}
	return st
}

// only is st with enclave e alone.
func only(st *State, e string) *State {
	for name := range st.Enclaves {
		if name != e {
			delete(st.Enclaves, name)
		}
	}
	return st
}
