package projections

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
)

// TestDiff compares states of the scripted history (and a few variations)
// with the changes expected between them.
func TestDiff(t *testing.T) {
	evs := history(t)
	seqs := make([]uint64, 0, 20)
	for i := range 20 {
		seqs = append(seqs, uint64(i+1))
	}
	at := func(evs []ledger.Event) *State { return fold(t, evs, seqs[:len(evs)]) }
	with := func(n int, more ...ledger.Event) *State {
		return at(append(append([]ledger.Event{}, evs[:n]...), more...))
	}
	deadline := asofT0.Add(7 * 24 * time.Hour)
	tests := []struct {
		name string
		a, b *State
		want []string // "op kind name[/version]"
		desc string   // a substring of one of the descriptions
	}{
		{"Same", at(evs[:6]), at(evs[:6]), nil, ""},
		{"FromNothing", nil, at(evs[:3]),
			[]string{"added enclave e", "added key k"}, `key "k" created (v1 AES256), enabled`},
		{"GrantSteps", at(evs[:2]), at(evs[:6]),
			[]string{"added key k", "added identity " + asofUser, "added assignment " + asofUser, "added policy p"},
			`policy "p" created: allow KEY:DECRYPT [k]`},
		{"RotateDisableEdit", at(evs[:6]), at(evs[:9]),
			[]string{"changed version k/1", "added version k/2", "changed policy p"},
			`policy "p" edited: allow KEY:DECRYPT [k] → [k*]`},
		{"DeleteKeyAndIdentity", at(evs[:9]), at(evs),
			[]string{"removed key k", "removed identity " + asofUser}, `key "k" destroyed`},
		{"CreatedAndDestroyedBetween", at(evs[:2]), at(evs[:10]),
			[]string{"added tombstone k", "added identity " + asofUser, "added assignment " + asofUser, "added policy p"},
			`key "k" created and destroyed`},
		{"NameReleased", at(evs), with(11, event(t, 11, ledger.TypeKeyNameReleased, "e", ledger.KeySubject("e", "k"), ledger.KeyNameReleased{Name: "k"})),
			[]string{"removed tombstone k"}, `name of destroyed key "k" released`},
		{"ScheduledDeletion", at(evs[:3]), with(3, event(t, 3, ledger.TypeKeyDeletionScheduled, "e", ledger.KeySubject("e", "k"), ledger.KeyDeletionScheduled{Name: "k", Deadline: deadline})),
			[]string{"changed key k"}, `key "k" pending deletion until 2025-03-08T12:00:00Z (was enabled)`},
		{"PolicyReassigned", at(evs[:6]), with(6,
			event(t, 6, ledger.TypePolicyCreated, "e", ledger.PolicySubject("e", "q"), ledger.PolicyCreated{Name: "q"}),
			event(t, 7, ledger.TypePolicyAssigned, "e", ledger.IdentitySubject("e", asofUser), ledger.PolicyAssigned{Identity: asofUser, Policy: "q"})),
			[]string{"changed assignment " + asofUser, "added policy q"}, `assigned policy "q" (was "p")`},
		{"IdentityPromoted", at(evs[:6]), with(6,
			event(t, 6, ledger.TypeIdentityCreated, "e", ledger.IdentitySubject("e", asofUser), ledger.IdentityCreated{Identity: asofUser, Privilege: ledger.PrivilegeAdmin})),
			[]string{"changed identity " + asofUser}, "replaced: Admin (was User)"},
		{"EnclaveDeleted", at(evs[:6]), with(6, event(t, 6, ledger.TypeEnclaveDeleted, "", ledger.EnclaveSubject("e"), ledger.EnclaveDeleted{Name: "e"})),
			[]string{"removed enclave e", "removed key k", "removed identity " + asofUser, "removed policy p"}, `enclave "e" deleted`},
		{"EnclaveRecreated", at(evs[:3]), with(3,
			event(t, 3, ledger.TypeEnclaveDeleted, "", ledger.EnclaveSubject("e"), ledger.EnclaveDeleted{Name: "e"}),
			event(t, 4, ledger.TypeEnclaveCreated, "", ledger.EnclaveSubject("e"), ledger.EnclaveCreated{Name: "e"})),
			[]string{"changed enclave e", "removed key k"}, `enclave "e" deleted and created again`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes := Diff(tt.a, tt.b)
			var got []string
			found := tt.desc == ""
			for _, c := range changes {
				s := c.Op + " " + c.Kind + " " + c.Name
				if c.Version != 0 {
					s += fmt.Sprintf("/%d", c.Version)
				}
				got = append(got, s)
				found = found || strings.Contains(c.Description, tt.desc)
				if c.Enclave != "e" || c.Description == "" {
					t.Errorf("change %+v: want enclave e and a description", c)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Diff = %q\nwant %q", got, tt.want)
			}
			if !found {
				t.Errorf("no description contains %q: %+v", tt.desc, changes)
			}
		})
	}
}
