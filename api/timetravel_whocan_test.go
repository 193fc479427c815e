package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
	authz "github.com/kmsledger/kmsledger/projections/access"
)

// grantState is a state with every kind of identity authorize knows.
func grantState(t *testing.T) *projections.State {
	t.Helper()
	st := projections.NewState()
	var seq uint64
	apply := func(typ, enclave string, p any) {
		t.Helper()
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		seq++
		if err := st.Apply(ledger.Event{Type: typ, Seq: seq, Time: time.Unix(int64(seq), 0), Enclave: enclave,
			Aggregate: fmt.Sprintf("a%d", seq), Payload: b}); err != nil {
			t.Fatal(err)
		}
	}
	id := func(enclave, name, priv string, sa bool, parent string, tags map[string]string) {
		apply(ledger.TypeIdentityCreated, enclave, ledger.IdentityCreated{Identity: name, Privilege: priv, ServiceAccount: sa, Parent: parent, Tags: tags})
	}
	apply(ledger.TypeSystemInitialized, "", ledger.SystemInitialized{RootIdentity: "root"})
	for _, e := range []string{"e", "f"} {
		apply(ledger.TypeEnclaveCreated, "", ledger.EnclaveCreated{Name: e})
	}
	apply(ledger.TypePolicyCreated, "e", ledger.PolicyCreated{Name: "p",
		Allow: map[string][]string{"KEY:DECRYPT": {"k*", "x"}, "KEY:LIST": {"k*"}, "POLICY:GET": {"p"}, "IDENTITY:STATUS": {"*"}},
		Deny:  map[string][]string{"KEY:DECRYPT": {"k2"}}})
	apply(ledger.TypePolicyCreated, "e", ledger.PolicyCreated{Name: "all", Allow: map[string][]string{"KEY:DECRYPT": {"*"}, "KEY:LIST": {"*"}},
		Deny: map[string][]string{"KEY:LIST": {"*"}}})
	id("e", "admin", ledger.PrivilegeAdmin, false, "", nil)
	id("e", "user", ledger.PrivilegeUser, false, "", nil)
	id("e", "all", ledger.PrivilegeUser, false, "", nil)
	id("e", "nopolicy", ledger.PrivilegeUser, false, "", nil)
	id("e", "lostpolicy", ledger.PrivilegeUser, false, "", nil)
	id("e", "auditor", ledger.PrivilegeUser, false, "", map[string]string{AuditorTag: AuditorRole})
	id("e", "sa-admin", ledger.PrivilegeUser, true, "admin", nil)
	id("e", "sa-user", ledger.PrivilegeUser, true, "user", nil)
	id("e", "sa-root", ledger.PrivilegeUser, true, "root", nil)
	id("e", "sa-orphan", ledger.PrivilegeUser, true, "gone", nil)
	id("e", "sa-sa", ledger.PrivilegeUser, true, "sa-user", nil)
	id("f", "user", ledger.PrivilegeAdmin, false, "", nil) // same identity, other enclave
	for who, pol := range map[string]string{"user": "p", "all": "all", "lostpolicy": "deleted"} {
		apply(ledger.TypePolicyAssigned, "e", ledger.PolicyAssigned{Identity: who, Policy: pol})
	}
	return st
}

// TestWhoCanMatchesAuthorize: for a grid of identities, enclaves,
// commands and resources, WhoCan lists an identity if and only if
// authorize allows it.
func TestWhoCanMatchesAuthorize(t *testing.T) {
	st := grantState(t)
	everyone := []string{"root", "stranger", "gone"}
	for _, e := range st.Enclaves {
		for id := range e.Identities {
			if !slices.Contains(everyone, id) {
				everyone = append(everyone, id)
			}
		}
	}
	checked, allowed := 0, 0
	for _, enclave := range []string{"e", "f", "nope"} {
		for _, c := range wire.Commands() {
			for _, res := range []string{"", "k", "k1", "k2", "x", "y", "p"} {
				grants := WhoCan(st, enclave, res, c.String())
				listed := map[string]Grant{}
				for _, g := range grants {
					if _, dup := listed[g.Identity]; dup {
						t.Errorf("WhoCan(%s, %q, %s) lists %s twice", enclave, res, c, g.Identity)
					}
					listed[g.Identity] = g
					if g.Reason == "" || g.Via == "" {
						t.Errorf("WhoCan(%s, %q, %s): grant %+v has no reason", enclave, res, c, g)
					}
				}
				for _, id := range everyone {
					checked++
					want := authorize(st, id, enclave, c, res) == nil
					if want {
						allowed++
					}
					if _, got := listed[id]; got != want {
						t.Errorf("%s %s on %q in %s: WhoCan lists it = %v, authorize allows = %v", id, c, res, enclave, got, want)
					}
				}
			}
		}
	}
	if allowed == 0 || allowed == checked {
		t.Fatalf("grid not discriminating: %d of %d allowed", allowed, checked)
	}
}

// TestWhoCanReasons checks the explanation of each kind of grant.
func TestWhoCanReasons(t *testing.T) {
	st := grantState(t)
	tests := []struct {
		name, enclave, key, cmd string
		want                    []Grant // Tags not compared
	}{
		{"DecryptK1", "e", "k1", "KEY:DECRYPT", []Grant{
			{Identity: "root", Via: client.ViaRoot},
			{Identity: "admin", Via: client.ViaAdmin},
			{Identity: "all", Via: client.ViaPolicy, Policy: "all", Rule: "*"},
			{Identity: "sa-admin", Via: client.ViaAdmin, Parent: "admin"},
			{Identity: "sa-root", Via: client.ViaAdmin, Parent: "root"},
			{Identity: "sa-user", Via: client.ViaPolicy, Parent: "user", Policy: "p", Rule: "k*"},
			{Identity: "user", Via: client.ViaPolicy, Policy: "p", Rule: "k*"},
		}},
		{"DenyWins", "e", "k2", "KEY:DECRYPT", []Grant{
			{Identity: "root", Via: client.ViaRoot},
			{Identity: "admin", Via: client.ViaAdmin},
			{Identity: "all", Via: client.ViaPolicy, Policy: "all", Rule: "*"},
			{Identity: "sa-admin", Via: client.ViaAdmin, Parent: "admin"},
			{Identity: "sa-root", Via: client.ViaAdmin, Parent: "root"},
		}},
		{"ListDenied", "e", "", "KEY:LIST", []Grant{
			{Identity: "root", Via: client.ViaRoot},
			{Identity: "admin", Via: client.ViaAdmin},
			{Identity: "sa-admin", Via: client.ViaAdmin, Parent: "admin"},
			{Identity: "sa-root", Via: client.ViaAdmin, Parent: "root"},
			{Identity: "sa-user", Via: client.ViaPolicy, Parent: "user", Policy: "p", Rule: "k*"},
			{Identity: "user", Via: client.ViaPolicy, Policy: "p", Rule: "k*"},
		}},
		{"EnclaveCommandRootOnly", "e", "", "ENCLAVE:STATUS", []Grant{{Identity: "root", Via: client.ViaRoot}}},
		{"OtherEnclaveAdmin", "f", "k1", "key:decrypt", []Grant{{Identity: "root", Via: client.ViaRoot}, {Identity: "user", Via: client.ViaAdmin}}},
		{"NoEnclave", "nope", "k1", "KEY:DECRYPT", []Grant{{Identity: "root", Via: client.ViaRoot}}},
		{"UnknownCommand", "e", "k1", "KEY:STEAL", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := WhoCan(st, tt.enclave, tt.key, tt.cmd)
			for i := range got {
				got[i].Tags, got[i].Reason = nil, ""
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
				t.Fatalf("WhoCan(%s, %s, %s) =\n%+v\nwant\n%+v", tt.enclave, tt.key, tt.cmd, got, tt.want)
			}
		})
	}
	// The reason names the policy and the rule.
	for _, g := range WhoCan(st, "e", "k1", "KEY:DECRYPT") {
		if g.Identity == "sa-user" && g.Reason != `service account of user, which is a User whose policy "p" allows KEY:DECRYPT on "k*"` {
			t.Errorf("reason = %q", g.Reason)
		}
	}
}

// TestGrantViaNames: the who-can endpoint answers with the grants of the
// access rules; their Via values are the client's.
func TestGrantViaNames(t *testing.T) {
	for _, v := range [][2]string{{authz.ViaRoot, client.ViaRoot}, {authz.ViaAdmin, client.ViaAdmin}, {authz.ViaPolicy, client.ViaPolicy}} {
		if v[0] != v[1] {
			t.Errorf("access names a grant %q, the client %q", v[0], v[1])
		}
	}
}
