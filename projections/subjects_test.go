package projections

import (
	"testing"

	"github.com/kmsledger/kmsledger/ledger"
)

// TestLastSeqFollowsKeys: the last sequence of a live key's subject is in
// its Key, not in the map of the other subjects; a key deleted by an event
// on its subject, or with its enclave, leaves its sequence in the map, and
// a key created again takes it back. A fork that deletes an enclave keeps
// the sequences in a map of its own. Snapshots keep all of them.
func TestLastSeqFollowsKeys(t *testing.T) {
	g := newGen(0)
	g.rng = nil
	init, _ := g.init(t, testHSM(t))
	created := func(e, n string, v uint32) ledger.Event {
		return g.ev(t, ledger.TypeKeyCreated, e, ledger.KeySubject(e, n), ledger.KeyCreated{Name: n, Version: v, Type: "AES256",
			SecretRef: ledger.SecretRef(e, n, v), Fingerprint: "fp"})
	}
	k1, k2 := ledger.KeySubject("e1", "k1"), ledger.KeySubject("e1", "k2")
	st := NewState()
	applyFrom(t, st, 0, []ledger.Event{init, // 1
		g.ev(t, ledger.TypeEnclaveCreated, "", ledger.EnclaveSubject("e1"), ledger.EnclaveCreated{Name: "e1"}), // 2
		created("e1", "k1", 1), created("e1", "k2", 1), created("e1", "k1", 2), // 3, 4, 5
	})
	want := map[string]uint64{ledger.SystemSubject(): 1, ledger.EnclaveSubject("e1"): 2, k1: 5, k2: 4, ledger.KeySubject("e1", "none"): 0}
	check := func(what string, s *State, want map[string]uint64) {
		t.Helper()
		for subj, seq := range want {
			if got := s.LastSeq(subj); got != seq {
				t.Errorf("%s: LastSeq(%s) = %d, want %d", what, subj, got, seq)
			}
		}
		for subj := range s.subjects {
			if s.liveKeySubject(subj) {
				t.Errorf("%s: the map holds %s, a live key's subject", what, subj)
			}
		}
		back, err := decodeState(encodeState(nil, s), nil)
		if err != nil {
			t.Fatal(err)
		}
		for subj, seq := range want {
			if got := back.LastSeq(subj); got != seq {
				t.Errorf("%s, from a snapshot: LastSeq(%s) = %d, want %d", what, subj, got, seq)
			}
		}
	}
	check("created", st, want)
	if len(st.subjects) != 2 {
		t.Errorf("the map holds %d subjects, want 2 (system, enclave): %v", len(st.subjects), st.subjects)
	}

	applyFrom(t, st, 5, []ledger.Event{g.ev(t, ledger.TypeKeyDeleted, "e1", k1, ledger.KeyDeleted{Name: "k1"})}) // 6
	want[k1] = 6
	check("k1 deleted", st, want)
	applyFrom(t, st, 6, []ledger.Event{created("e1", "k1", 3)}) // 7
	want[k1] = 7
	check("k1 created again", st, want)

	before := len(st.subjects)
	f := st.Fork()
	if err := f.Apply(g.ev(t, ledger.TypeEnclaveDeleted, "", ledger.EnclaveSubject("e1"), ledger.EnclaveDeleted{Name: "e1"})); err != nil {
		t.Fatal(err)
	}
	check("a fork that deleted e1", f, want)
	if len(st.subjects) != before || st.Enclaves["e1"] == nil {
		t.Errorf("the fork changed the state: %d subjects in the map (was %d)", len(st.subjects), before)
	}

	applyFrom(t, st, 7, []ledger.Event{g.ev(t, ledger.TypeEnclaveDeleted, "", ledger.EnclaveSubject("e1"), ledger.EnclaveDeleted{Name: "e1"})}) // 8
	want[ledger.EnclaveSubject("e1")] = 8
	check("e1 deleted", st, want)
}
