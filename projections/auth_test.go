package projections

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
)

func TestAuthEvents(t *testing.T) {
	st := NewState()
	at := time.Unix(1000, 0)
	apply := func(s *State, typ, subject string, p any) {
		t.Helper()
		b, _ := json.Marshal(p)
		enclave := "e"
		if typ == ledger.TypeSystemInitialized || typ == ledger.TypeEnclaveCreated {
			enclave = ""
		}
		if err := s.Apply(ledger.Event{Type: typ, Time: at, Enclave: enclave, Aggregate: subject, Payload: b}); err != nil {
			t.Fatal(err)
		}
	}
	h1, h2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	apply(st, ledger.TypeSystemInitialized, ledger.SystemSubject(), ledger.SystemInitialized{RootIdentity: "root"})
	apply(st, ledger.TypeEnclaveCreated, ledger.EnclaveSubject("e"), ledger.EnclaveCreated{Name: "e"})
	apply(st, ledger.TypeIdentityCreated, ledger.IdentitySubject("e", "u"), ledger.IdentityCreated{Identity: "u", Privilege: ledger.PrivilegeUser})
	apply(st, ledger.TypeAppRoleSet, ledger.AppRoleSubject("e", "r"), ledger.AppRoleSet{Role: "r", RoleID: "id", Identity: "u", TokenTTL: 60})
	apply(st, ledger.TypeAppRoleSecretIDAdded, ledger.AppRoleSubject("e", "r"), ledger.AppRoleSecretIDAdded{Role: "r", Accessor: "a", Hash: h1})
	apply(st, ledger.TypeTokenIssued, ledger.TokenSubject("e", h1[:24]), ledger.TokenIssued{Accessor: h1[:24], Hash: h1, Identity: "u", TTL: 60, ExpiresAt: at.Add(time.Minute)})
	e := st.Enclaves["e"]
	if r := e.AppRoleByID("id"); r == nil || r.SecretIDs[h1] != "a" || r.TokenTTL != time.Minute {
		t.Fatalf("role = %+v", r)
	}
	// A fork changes neither the role's secret ids nor the tokens of the state.
	f := st.Fork()
	apply(f, ledger.TypeAppRoleSecretIDAdded, ledger.AppRoleSubject("e", "r"), ledger.AppRoleSecretIDAdded{Role: "r", Accessor: "b", Hash: h2})
	apply(f, ledger.TypeTokenRevoked, ledger.TokenSubject("e", h1[:24]), ledger.TokenRevoked{Accessor: h1[:24]})
	if len(st.Enclaves["e"].AppRoles["r"].SecretIDs) != 1 || st.Enclaves["e"].Tokens[h1] == nil {
		t.Fatal("applying to a fork changed the state's role or tokens")
	}
	apply(st, ledger.TypeTokenRenewed, ledger.TokenSubject("e", h1[:24]), ledger.TokenRenewed{Accessor: h1[:24], ExpiresAt: at.Add(time.Hour)})
	if got := st.Enclaves["e"].Tokens[h1].ExpiresAt; !got.Equal(at.Add(time.Hour)) {
		t.Fatalf("renewed expiry = %v", got)
	}
	// A later login forgets tokens expired by its time.
	at = at.Add(2 * time.Hour)
	apply(st, ledger.TypeTokenIssued, ledger.TokenSubject("e", h2[:24]), ledger.TokenIssued{Accessor: h2[:24], Hash: h2, Identity: "u", TTL: 60, ExpiresAt: at.Add(time.Minute)})
	if st.Enclaves["e"].Tokens[h1] != nil || st.Enclaves["e"].Tokens[h2] == nil {
		t.Fatal("an expired token was kept, or the new one dropped")
	}
	// Deleting the identity drops its tokens.
	apply(st, ledger.TypeIdentityDeleted, ledger.IdentitySubject("e", "u"), ledger.IdentityDeleted{Identity: "u"})
	if len(st.Enclaves["e"].Tokens) != 0 {
		t.Fatal("the tokens of a deleted identity remain")
	}
	apply(st, ledger.TypeAppRoleDeleted, ledger.AppRoleSubject("e", "r"), ledger.AppRoleDeleted{Role: "r"})
	if st.Enclaves["e"].AppRoles["r"] != nil {
		t.Fatal("role not deleted")
	}
}
