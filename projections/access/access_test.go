package access_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
	"github.com/kmsledger/kmsledger/projections/access"
)

// event is one given event: its type, enclave, actor and payload.
type event struct {
	typ, enclave, actor string
	payload             any
}

func initialized(root string) event {
	return event{ledger.TypeSystemInitialized, "", "", ledger.SystemInitialized{RootIdentity: root}}
}

func enclaveCreated(name string) event {
	return event{ledger.TypeEnclaveCreated, "", "root", ledger.EnclaveCreated{Name: name}}
}

func policyCreated(enclave, name string, allow, deny map[string][]string) event {
	return event{ledger.TypePolicyCreated, enclave, "root", ledger.PolicyCreated{Name: name, Allow: allow, Deny: deny}}
}

func identityCreated(enclave, by, id, priv string, parent string, tags map[string]string) event {
	return event{ledger.TypeIdentityCreated, enclave, by,
		ledger.IdentityCreated{Identity: id, Privilege: priv, ServiceAccount: parent != "", Parent: parent, Tags: tags}}
}

func policyAssigned(enclave, id, policy string) event {
	return event{ledger.TypePolicyAssigned, enclave, "root", ledger.PolicyAssigned{Identity: id, Policy: policy}}
}

// given folds events into a fresh state, as the projection does.
func given(t *testing.T, events ...event) *projections.State {
	t.Helper()
	st := projections.NewState()
	for i, ev := range events {
		b, err := json.Marshal(ev.payload)
		if err != nil {
			t.Fatal(err)
		}
		seq := uint64(i + 1)
		if err := st.Apply(ledger.Event{Type: ev.typ, Seq: seq, Time: time.Unix(int64(seq), 0), Actor: ev.actor,
			Enclave: ev.enclave, Aggregate: fmt.Sprintf("a%d", seq), Payload: b}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// world is a state with every kind of identity the rules know: in
// enclave e an Admin, Users with a narrow policy, a broad policy whose
// deny wins, no policy and a deleted policy, auditors made by root, by
// the Admin, by a User and by service accounts, and service accounts of the Admin, a User,
// root, a deleted parent and another service account; in enclave f the
// identity "user" is an Admin.
func world(t *testing.T) *projections.State {
	t.Helper()
	const admin, user = ledger.PrivilegeAdmin, ledger.PrivilegeUser
	auditor := map[string]string{access.AuditorTag: access.AuditorRole}
	return given(t,
		initialized("root"),
		enclaveCreated("e"),
		enclaveCreated("f"),
		policyCreated("e", "p",
			map[string][]string{"KEY:DECRYPT": {"k*", "x"}, "KEY:LIST": {"k*"}, "POLICY:GET": {"p"}, "IDENTITY:STATUS": {"*"},
				"IDENTITY:CREATE": {"*"}, "CLUSTER:STATUS": {"*"}, "ENCLAVE:STATUS": {"*"}},
			map[string][]string{"KEY:DECRYPT": {"k2"}}),
		policyCreated("e", "all", map[string][]string{"KEY:DECRYPT": {"*"}, "KEY:LIST": {"*"}},
			map[string][]string{"KEY:LIST": {"*"}}),
		identityCreated("e", "root", "admin", admin, "", nil),
		identityCreated("e", "root", "user", user, "", nil),
		identityCreated("e", "root", "all", user, "", nil),
		identityCreated("e", "root", "nopolicy", user, "", nil),
		identityCreated("e", "root", "lostpolicy", user, "", nil),
		identityCreated("e", "root", "auditor", user, "", auditor),
		identityCreated("e", "admin", "auditor-by-admin", user, "", auditor),
		identityCreated("e", "user", "auditor-by-user", user, "", auditor),
		identityCreated("e", "sa-admin", "auditor-by-sa", user, "", auditor),
		identityCreated("e", "admin", "sa-admin-privileged", admin, "admin", nil),
		identityCreated("e", "sa-admin-privileged", "auditor-by-privileged-sa", user, "", auditor),
		identityCreated("e", "root", "admin-tagged", admin, "", auditor),
		identityCreated("e", "admin", "sa-admin", user, "admin", nil),
		identityCreated("e", "user", "sa-user", user, "user", nil),
		identityCreated("e", "root", "sa-root", user, "root", nil),
		identityCreated("e", "root", "sa-orphan", user, "gone", nil),
		identityCreated("e", "sa-user", "sa-sa", user, "sa-user", nil),
		identityCreated("e", "root", "sa-auditor", user, "auditor", nil),
		identityCreated("f", "root", "user", admin, "", nil),
		policyAssigned("e", "user", "p"),
		policyAssigned("e", "all", "all"),
		policyAssigned("e", "lostpolicy", "deleted"),
	)
}

func TestExplain(t *testing.T) {
	st := world(t)
	type want struct {
		ok                        bool
		via, parent, policy, rule string
	}
	deny := want{}
	tests := []struct {
		name, identity, enclave string
		cmd                     wire.Command
		resource                string
		want                    want
	}{
		{"RootAnything", "root", "nope", wire.CmdClusterAddNode, "", want{ok: true, via: access.ViaRoot}},
		{"RootEnclaveCommand", "root", "", wire.CmdEnclaveCreate, "z", want{ok: true, via: access.ViaRoot}},
		{"AdminKey", "admin", "e", wire.CmdKeyDelete, "k1", want{ok: true, via: access.ViaAdmin}},
		{"AdminIdentity", "admin", "e", wire.CmdIdentityCreate, "anyone", want{ok: true, via: access.ViaAdmin}},
		{"AdminClusterCommand", "admin", "e", wire.CmdClusterStatus, "", deny},
		{"AdminEnclaveCommand", "admin", "e", wire.CmdEnclaveDelete, "e", deny},
		{"AdminUnknownCommand", "admin", "e", wire.Command(299), "k1", deny},
		{"AdminOtherEnclave", "admin", "f", wire.CmdKeyDecrypt, "k1", deny},
		{"AdminNoEnclave", "admin", "nope", wire.CmdKeyDecrypt, "k1", deny},
		{"UserAllowPattern", "user", "e", wire.CmdKeyDecrypt, "k1", want{ok: true, via: access.ViaPolicy, policy: "p", rule: "k*"}},
		{"UserAllowExact", "user", "e", wire.CmdKeyDecrypt, "x", want{ok: true, via: access.ViaPolicy, policy: "p", rule: "x"}},
		{"UserDenyWins", "user", "e", wire.CmdKeyDecrypt, "k2", deny},
		{"UserNoRuleMatches", "user", "e", wire.CmdKeyDecrypt, "y", deny},
		{"UserExactIsNotPrefix", "user", "e", wire.CmdKeyDecrypt, "xy", deny},
		{"UserOtherCommand", "user", "e", wire.CmdKeyGenerate, "k1", deny},
		{"UserList", "user", "e", wire.CmdKeyList, "", want{ok: true, via: access.ViaPolicy, policy: "p", rule: "k*"}},
		{"UserListDeniedByDeny", "all", "e", wire.CmdKeyList, "", deny},
		{"UserPolicyCannotGrantCluster", "user", "e", wire.CmdClusterStatus, "", deny},
		{"UserPolicyCannotGrantEnclave", "user", "e", wire.CmdEnclaveStatus, "e", deny},
		{"UserElsewhereAdmin", "user", "f", wire.CmdKeyDecrypt, "k1", want{ok: true, via: access.ViaAdmin}},
		{"UserNoPolicy", "nopolicy", "e", wire.CmdKeyDecrypt, "k1", deny},
		{"UserDeletedPolicy", "lostpolicy", "e", wire.CmdKeyDecrypt, "k1", deny},
		{"AuditorTagGrantsNoKey", "auditor", "e", wire.CmdKeyDecrypt, "k1", deny},
		{"ServiceAccountOfAdmin", "sa-admin", "e", wire.CmdKeyDelete, "k1", want{ok: true, via: access.ViaAdmin, parent: "admin"}},
		{"ServiceAccountOfRoot", "sa-root", "e", wire.CmdIdentityDelete, "admin", want{ok: true, via: access.ViaAdmin, parent: "root"}},
		{"ServiceAccountOfRootNoCluster", "sa-root", "e", wire.CmdClusterStatus, "", deny},
		{"ServiceAccountOfUser", "sa-user", "e", wire.CmdKeyDecrypt, "k1", want{ok: true, via: access.ViaPolicy, parent: "user", policy: "p", rule: "k*"}},
		{"ServiceAccountOfUserDenyWins", "sa-user", "e", wire.CmdKeyDecrypt, "k2", deny},
		{"ServiceAccountOrphan", "sa-orphan", "e", wire.CmdKeyDecrypt, "k1", deny},
		{"ServiceAccountDoesNotChain", "sa-sa", "e", wire.CmdKeyDecrypt, "k1", deny},
		{"Stranger", "stranger", "e", wire.CmdKeyDecrypt, "k1", deny},
		{"NoIdentity", "", "e", wire.CmdKeyList, "", deny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, ok := access.Explain(st, tt.identity, tt.enclave, tt.cmd, tt.resource)
			got := want{ok, g.Via, g.Parent, g.Policy, g.Rule}
			if got != tt.want {
				t.Fatalf("Explain(%s, %s, %v, %q) = %+v, want %+v", tt.identity, tt.enclave, tt.cmd, tt.resource, got, tt.want)
			}
			if ok && (g.Identity != tt.identity || g.Reason == "") {
				t.Fatalf("grant %+v: want identity %s and a reason", g, tt.identity)
			}
			if ok != access.Authorize(st, tt.identity, tt.enclave, tt.cmd, tt.resource) {
				t.Fatalf("Authorize disagrees with Explain")
			}
		})
	}
}

// TestExplainReason: the reason names the path of the rights, the policy
// and the rule.
func TestExplainReason(t *testing.T) {
	st := world(t)
	g, ok := access.Explain(st, "sa-user", "e", wire.CmdKeyDecrypt, "k1")
	if want := `service account of user, which is a User whose policy "p" allows KEY:DECRYPT on "k*"`; !ok || g.Reason != want {
		t.Fatalf("reason = %q, want %q", g.Reason, want)
	}
	g, _ = access.Explain(st, "sa-admin", "e", wire.CmdKeyDecrypt, "k1")
	if want := "service account of admin, which is an Admin of the enclave"; g.Reason != want {
		t.Fatalf("reason = %q, want %q", g.Reason, want)
	}
}

// TestWhoCanIsExplain: over a grid of enclaves, commands and resources,
// WhoCan lists, in order, exactly the identities Explain grants, with
// Explain's grant.
func TestWhoCanIsExplain(t *testing.T) {
	st := world(t)
	everyone := []string{"root", "stranger", "gone", ""}
	for _, e := range st.Enclaves {
		for id := range e.Identities {
			if !slices.Contains(everyone, id) {
				everyone = append(everyone, id)
			}
		}
	}
	allowed := 0
	for _, enclave := range []string{"e", "f", "nope", ""} {
		for _, c := range append(wire.Commands(), 0, 299) {
			for _, res := range []string{"", "k", "k1", "k2", "x", "y", "p"} {
				grants := access.WhoCan(st, enclave, res, c)
				if len(grants) == 0 || grants[0].Identity != "root" {
					t.Fatalf("WhoCan(%s, %q, %v) = %+v: root is not first", enclave, res, c, grants)
				}
				listed := map[string]access.Grant{}
				for i, g := range grants {
					if _, dup := listed[g.Identity]; dup {
						t.Errorf("WhoCan(%s, %q, %v) lists %s twice", enclave, res, c, g.Identity)
					}
					if i > 1 && g.Identity < grants[i-1].Identity {
						t.Errorf("WhoCan(%s, %q, %v): %s after %s", enclave, res, c, g.Identity, grants[i-1].Identity)
					}
					listed[g.Identity] = g
				}
				for _, id := range everyone {
					want, ok := access.Explain(st, id, enclave, c, res)
					got, listedOK := listed[id]
					if ok != listedOK || fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("%q %v on %q in %q: WhoCan gives %+v (%v), Explain %+v (%v)", id, c, res, enclave, got, listedOK, want, ok)
					}
					if ok {
						allowed++
					}
				}
			}
		}
	}
	if allowed == 0 {
		t.Fatal("grid not discriminating: nothing allowed")
	}
	if got := access.WhoCan(given(t), "e", "k", wire.CmdKeyDecrypt); got != nil {
		t.Fatalf("WhoCan before initialisation = %+v, want nil", got)
	}
}

func TestIsAdmin(t *testing.T) {
	st := world(t)
	tests := []struct {
		identity, enclave string
		want              bool
	}{
		{"root", "e", true},
		{"root", "nope", true},
		{"admin", "e", true},
		{"admin", "f", false},
		{"sa-admin", "e", true},
		{"sa-root", "e", true},
		{"user", "e", false},
		{"user", "f", true},
		{"sa-user", "e", false},
		{"sa-orphan", "e", false},
		{"admin-tagged", "e", true},
		{"stranger", "e", false},
		{"", "e", false},
	}
	for _, tt := range tests {
		if got := access.IsAdmin(st, tt.identity, tt.enclave); got != tt.want {
			t.Errorf("IsAdmin(%q, %s) = %v, want %v", tt.identity, tt.enclave, got, tt.want)
		}
	}
	if access.IsAdmin(given(t, enclaveCreated("e")), "", "e") || access.IsRoot(given(t), "") {
		t.Error("the empty identity is root of an uninitialised state")
	}
}

func TestIsMember(t *testing.T) {
	st := world(t)
	tests := []struct {
		identity, enclave string
		want              bool
	}{
		{"root", "nope", true},
		{"user", "e", true},
		{"user", "f", true},
		{"admin", "f", false},
		{"sa-orphan", "e", true},
		{"stranger", "e", false},
		{"", "e", false},
	}
	for _, tt := range tests {
		if got := access.IsMember(st, tt.identity, tt.enclave); got != tt.want {
			t.Errorf("IsMember(%q, %s) = %v, want %v", tt.identity, tt.enclave, got, tt.want)
		}
	}
}

// TestMayChangeIdentity: Admin-class callers change anyone; anybody else
// only User-class identities, and cannot make an Admin.
func TestMayChangeIdentity(t *testing.T) {
	st := world(t)
	tests := []struct {
		name, caller, target string
		makesAdmin           bool
		want                 bool
	}{
		{"RootMakesAdmin", "root", "new", true, true},
		{"AdminMakesAdmin", "admin", "new", true, true},
		{"AdminChangesAdmin", "admin", "admin-tagged", false, true},
		{"AdminServiceAccountMakesAdmin", "sa-admin", "new", true, true},
		{"RootServiceAccountChangesAdmin", "sa-root", "admin", false, true},
		{"UserMakesUser", "user", "new", false, true},
		{"UserChangesUser", "user", "nopolicy", false, true},
		{"UserChangesServiceAccountOfUser", "user", "sa-user", false, true},
		{"UserMakesAdmin", "user", "new", true, false},
		{"UserChangesAdmin", "user", "admin", false, false},
		{"UserChangesServiceAccountOfAdmin", "user", "sa-admin", false, false},
		{"UserChangesServiceAccountOfRoot", "user", "sa-root", false, false},
		{"UserChangesRoot", "user", "root", false, false},
		{"StrangerMakesAdmin", "stranger", "new", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := access.MayChangeIdentity(st, tt.caller, "e", tt.target, tt.makesAdmin); got != tt.want {
				t.Fatalf("MayChangeIdentity(%s, %s, admin=%v) = %v, want %v", tt.caller, tt.target, tt.makesAdmin, got, tt.want)
			}
		})
	}
}

// TestReadLedger: root reads everything; Admins and auditors (made by
// root or a real Admin) and their service accounts read their enclave
// when they name it; nobody else reads anything.
func TestReadLedger(t *testing.T) {
	st := world(t)
	tests := []struct {
		identity, enclave string
		want              access.LedgerRead
	}{
		{"root", "", access.LedgerAll},
		{"root", "e", access.LedgerAll},
		{"root", "nope", access.LedgerAll},
		{"admin", "e", access.LedgerEnclave},
		{"admin", "", access.LedgerNameEnclave},
		{"admin", "f", access.LedgerDenied},
		{"auditor", "e", access.LedgerEnclave},
		{"auditor-by-admin", "e", access.LedgerEnclave},
		{"auditor-by-user", "e", access.LedgerDenied},          // a User cannot mint auditors
		{"auditor-by-sa", "e", access.LedgerDenied},            // nor can a service account
		{"auditor-by-privileged-sa", "e", access.LedgerDenied}, // even one recorded as Admin
		{"admin-tagged", "e", access.LedgerEnclave},            // as an Admin
		{"sa-auditor", "e", access.LedgerEnclave},              // service account of an auditor
		{"sa-admin", "e", access.LedgerEnclave},                // service account of an Admin
		{"sa-root", "e", access.LedgerEnclave},                 // service account of root
		{"sa-orphan", "e", access.LedgerDenied},                // parent gone
		{"user", "e", access.LedgerDenied},                     // a policy grants no history
		{"user", "f", access.LedgerEnclave},                    // where it is an Admin
		{"user", "", access.LedgerNameEnclave},                 // must name one
		{"stranger", "", access.LedgerDenied},                  // not told to name one
		{"stranger", "e", access.LedgerDenied},                 //
		{"", "", access.LedgerDenied},                          // no certificate
		{"", "e", access.LedgerDenied},                         //
		{"admin", "nope", access.LedgerDenied},                 // no such enclave
		{"auditor", "f", access.LedgerDenied},                  // auditor of another enclave
		{"sa-sa", "e", access.LedgerDenied},                    // service accounts do not chain
		{"lostpolicy", "e", access.LedgerDenied},               //
		{"nopolicy", "e", access.LedgerDenied},                 //
		{"all", "e", access.LedgerDenied},                      //
		{"sa-user", "e", access.LedgerDenied},                  //
		{"auditor-by-admin", "", access.LedgerNameEnclave},     //
	}
	for _, tt := range tests {
		if got := access.ReadLedger(st, tt.identity, tt.enclave); got != tt.want {
			t.Errorf("ReadLedger(%q, %q) = %v, want %v", tt.identity, tt.enclave, got, tt.want)
		}
	}
}

// TestAuditorCreatorDemoted: an auditor made by an Admin who is no longer
// one reads nothing until a current Admin creates it again.
func TestAuditorCreatorDemoted(t *testing.T) {
	auditor := map[string]string{access.AuditorTag: access.AuditorRole}
	before := []event{
		initialized("root"),
		enclaveCreated("e"),
		identityCreated("e", "root", "admin", ledger.PrivilegeAdmin, "", nil),
		identityCreated("e", "admin", "aud", ledger.PrivilegeUser, "", auditor),
	}
	if got := access.ReadLedger(given(t, before...), "aud", "e"); got != access.LedgerEnclave {
		t.Fatalf("before: ReadLedger = %v, want LedgerEnclave", got)
	}
	demoted := append(slices.Clone(before), identityCreated("e", "root", "admin", ledger.PrivilegeUser, "", nil))
	if got := access.ReadLedger(given(t, demoted...), "aud", "e"); got != access.LedgerDenied {
		t.Fatalf("creator demoted: ReadLedger = %v, want LedgerDenied", got)
	}
	again := append(demoted, identityCreated("e", "root", "aud", ledger.PrivilegeUser, "", auditor))
	if got := access.ReadLedger(given(t, again...), "aud", "e"); got != access.LedgerEnclave {
		t.Fatalf("created again by root: ReadLedger = %v, want LedgerEnclave", got)
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"k", "k", true},
		{"k", "k1", false},
		{"k*", "k", true},
		{"k*", "k1", true},
		{"k*", "xk1", false},
		{"*k", "k", false}, // only a trailing * is a wildcard
		{"*k", "*k", true},
		{"k*1", "k21", false},
		{"", "", true},
		{"", "k", false},
	}
	for _, tt := range tests {
		if got := access.Match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}
