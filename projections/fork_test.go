package projections

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
)

func TestForkLeavesTheStateAlone(t *testing.T) {
	st := NewState()
	var seq uint64
	apply := func(s *State, typ, enclave, subject string, p any) {
		t.Helper()
		b, _ := json.Marshal(p)
		ev := ledger.Event{Type: typ, Time: time.Unix(1, 0), Enclave: enclave, Aggregate: subject, Payload: b}
		if s == st {
			seq++
			ev.Seq = seq
		}
		if err := s.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	apply(st, ledger.TypeSystemInitialized, "", ledger.SystemSubject(), ledger.SystemInitialized{RootIdentity: "root"})
	apply(st, ledger.TypeEnclaveCreated, "", ledger.EnclaveSubject("e"), ledger.EnclaveCreated{Name: "e"})
	apply(st, ledger.TypeKeyCreated, "e", ledger.KeySubject("e", "k"), ledger.KeyCreated{Name: "k", Version: 1, SecretRef: "r"})
	apply(st, ledger.TypeIdentityCreated, "e", ledger.IdentitySubject("e", "u"), ledger.IdentityCreated{Identity: "u", Privilege: ledger.PrivilegeUser})
	apply(st, ledger.TypePolicyCreated, "e", ledger.PolicySubject("e", "p"), ledger.PolicyCreated{Name: "p"})
	before, _ := json.Marshal(st)

	f := st.Fork()
	apply(f, ledger.TypeKeyDisabled, "e", ledger.KeySubject("e", "k"), ledger.KeyDisabled{Name: "k", Version: 1})
	apply(f, ledger.TypeKeyCreated, "e", ledger.KeySubject("e", "k"), ledger.KeyCreated{Name: "k", Version: 2, SecretRef: "r2"})
	apply(f, ledger.TypePolicyAssigned, "e", ledger.IdentitySubject("e", "u"), ledger.PolicyAssigned{Identity: "u", Policy: "p"})
	apply(f, ledger.TypePolicyDeleted, "e", ledger.PolicySubject("e", "p"), ledger.PolicyDeleted{Name: "p"})
	apply(f, ledger.TypeEnclaveCreated, "", ledger.EnclaveSubject("f"), ledger.EnclaveCreated{Name: "f"})
	apply(f, ledger.TypeEnclaveDeleted, "", ledger.EnclaveSubject("e"), ledger.EnclaveDeleted{Name: "e"})

	if after, _ := json.Marshal(st); string(after) != string(before) {
		t.Fatalf("applying to a fork changed the state:\n%s\n%s", before, after)
	}
	if f.Enclaves["e"] != nil || f.Enclaves["f"] == nil || st.Enclaves["f"] != nil {
		t.Fatal("the fork does not hold its own changes")
	}
	// A second fork sees the state, not the first fork.
	g := st.Fork()
	apply(g, ledger.TypeKeyDeleted, "e", ledger.KeySubject("e", "k"), ledger.KeyDeleted{Name: "k"})
	if st.Enclaves["e"].Keys["k"] == nil || st.Enclaves["e"].Keys["k"].Version(1).Disabled {
		t.Fatal("a fork changed a key of the state")
	}
	if g.Enclaves["e"].Keys["k"] != nil || g.Enclaves["e"].Tombstones["k"] == nil {
		t.Fatal("the second fork did not apply its own event")
	}
}
