package access_test

import (
	"testing"

	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections/access"
)

// TestMayReadMetrics: root, and identities root made with a policy root
// made allowing CLUSTER:STATUS on "metrics" (not denied), may read the
// metrics; nobody else, whatever an enclave Admin writes.
func TestMayReadMetrics(t *testing.T) {
	allow := map[string][]string{"CLUSTER:STATUS": {"metrics"}}
	st := given(t,
		initialized("root"),
		enclaveCreated("e"),
		policyCreated("e", "scrape", allow, nil),
		policyCreated("e", "other", map[string][]string{"CLUSTER:STATUS": {"status"}}, nil),
		policyCreated("e", "denied", map[string][]string{"CLUSTER:STATUS": {"*"}}, map[string][]string{"CLUSTER:STATUS": {"metr*"}}),
		policyCreated("e", "keys", map[string][]string{"KEY:GENERATE": {"*"}}, nil),
		identityCreated("e", "root", "reader", ledger.PrivilegeUser, "", nil),
		policyAssigned("e", "reader", "scrape"),
		identityCreated("e", "reader", "reader-sa", ledger.PrivilegeUser, "reader", nil),
		identityCreated("e", "root", "admin", ledger.PrivilegeAdmin, "", nil),
		identityCreated("e", "root", "sa-of-root", ledger.PrivilegeUser, "root", nil),
		identityCreated("e", "admin", "admin-made", ledger.PrivilegeUser, "", nil),
		policyAssigned("e", "admin-made", "scrape"),
		event{ledger.TypePolicyCreated, "e", "admin", ledger.PolicyCreated{Name: "admin-scrape", Allow: allow}},
		identityCreated("e", "root", "on-admin-policy", ledger.PrivilegeUser, "", nil),
		policyAssigned("e", "on-admin-policy", "admin-scrape"),
		identityCreated("e", "root", "other-resource", ledger.PrivilegeUser, "", nil),
		policyAssigned("e", "other-resource", "other"),
		identityCreated("e", "root", "deny-wins", ledger.PrivilegeUser, "", nil),
		policyAssigned("e", "deny-wins", "denied"),
		identityCreated("e", "root", "key-user", ledger.PrivilegeUser, "", nil),
		policyAssigned("e", "key-user", "keys"),
	)
	for id, want := range map[string]bool{
		"root": true, "reader": true, "reader-sa": true,
		"admin": false, "sa-of-root": false, "admin-made": false, "on-admin-policy": false,
		"other-resource": false, "deny-wins": false, "key-user": false, "stranger": false, "": false,
	} {
		if got := access.MayReadMetrics(st, id); got != want {
			t.Errorf("MayReadMetrics(%q) = %v, want %v", id, got, want)
		}
	}
}
