package projections

import (
	"maps"
	"slices"
	"testing"

	"github.com/kmsledger/kmsledger/ledger"
)

// pendingByScan is every key pending deletion, by a scan of all keys.
func pendingByScan(s *State) []string {
	var out []string
	for _, e := range s.Enclaves {
		for _, k := range e.Keys {
			if k.pending != nil {
				out = append(out, e.Name+"/"+k.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// pendingByIndex is what PendingDeletion yields; the index itself must
// hold no other name (a key restored or deleted since).
func pendingByIndex(s *State) []string {
	var out []string
	for _, e := range s.Enclaves {
		for k := range e.PendingDeletion() {
			out = append(out, e.Name+"/"+k.Name)
		}
		for name := range e.pending {
			if k := e.Keys[name]; k == nil || k.pending == nil {
				out = append(out, e.Name+"/"+name+" (stale)")
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestPendingDeletionIndex: over random histories (schedules, restores,
// deletions of keys, versions and enclaves), PendingDeletion yields
// exactly the keys pending deletion after every event, in a state decoded
// from a snapshot and in a fork, and a fork's restore leaves the
// original's index alone.
func TestPendingDeletionIndex(t *testing.T) {
	t.Parallel()
	g := newGen(21)
	st := NewState()
	seen := 0
	for i := range 3000 {
		if err := st.Apply(g.next(t)); err != nil {
			continue
		}
		want := pendingByScan(st)
		if got := pendingByIndex(st); !slices.Equal(got, want) {
			t.Fatalf("after event %d: PendingDeletion = %q, want %q", i, got, want)
		}
		seen = max(seen, len(want))
	}
	if seen == 0 {
		t.Fatal("the history never had a key pending deletion")
	}
	back, err := decodeState(encodeState(nil, st), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pendingByIndex(back), pendingByScan(st); !slices.Equal(got, want) {
		t.Errorf("decoded snapshot: PendingDeletion = %q, want %q", got, want)
	}
	sameState(t, "decoded", st, back)

	want := pendingByScan(st)
	if len(want) == 0 {
		t.Fatal("no key pending deletion at the end of the history")
	}
	f := st.Fork()
	for _, e := range slices.Sorted(maps.Keys(f.Enclaves)) {
		for k := range f.Enclaves[e].PendingDeletion() {
			ev := g.ev(t, ledger.TypeKeyRestored, e, ledger.KeySubject(e, k.Name), ledger.KeyRestored{Name: k.Name})
			if err := f.Apply(ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := pendingByIndex(f); len(got) != 0 || len(pendingByScan(f)) != 0 {
		t.Errorf("fork after restoring every key: PendingDeletion = %q, want none", got)
	}
	if got := pendingByIndex(st); !slices.Equal(got, want) {
		t.Errorf("original after the fork's restores: PendingDeletion = %q, want %q", got, want)
	}
}
