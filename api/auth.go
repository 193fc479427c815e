package api

import (
	"strings"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// authorize decides whether identity may run cmd on resource in enclave
// (spec kms-api.md §7):
//   - the root (SysAdmin) identity may do everything;
//   - cluster and enclave commands are for the root identity only;
//   - an Admin of the enclave may do everything inside it;
//   - a User may do what its policy allows: an Allow pattern of the
//     command matches the resource and no Deny pattern does (deny wins;
//     default deny);
//   - a service account has its parent's rights;
//   - nobody but root reaches an enclave it has no identity in.
//
// resource is the command's argument: a key name for KEY:*, a policy name
// for POLICY:*, an identity for IDENTITY:*, "" for listings.
func authorize(st *projections.State, identity, enclave string, cmd wire.Command, resource string) error {
	if identity != "" && identity == st.RootIdentity {
		return nil
	}
	if !cmd.Scope().InEnclave() {
		return errPermission
	}
	e := st.Enclaves[enclave]
	if e == nil {
		return errPermission
	}
	id := e.Identities[identity]
	if id != nil && id.ServiceAccount {
		switch parent := e.Identities[id.Parent]; {
		case id.Parent == st.RootIdentity:
			id = &projections.Identity{Privilege: ledger.PrivilegeAdmin}
		case parent == nil:
			return errPermission
		default:
			id = parent
		}
	}
	if id == nil {
		return errPermission
	}
	if id.Privilege == ledger.PrivilegeAdmin {
		return nil
	}
	p := e.Policies[id.Policy]
	if p == nil {
		return errPermission
	}
	name := cmd.String()
	if matchAny(p.Deny[name], resource) {
		return errPermission
	}
	if isList(cmd) {
		if len(p.Allow[name]) > 0 {
			return nil
		}
		return errPermission
	}
	if matchAny(p.Allow[name], resource) {
		return nil
	}
	return errPermission
}

func isList(cmd wire.Command) bool {
	switch cmd {
	case wire.CmdEnclaveList, wire.CmdKeyList, wire.CmdPolicyList, wire.CmdIdentityList:
		return true
	}
	return false
}

// matchAny reports whether one of patterns matches name: "*" matches
// everything, "prefix*" every name starting with prefix, any other
// pattern only itself.
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if p == "*" || p == name {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// isAdmin reports whether identity is root, an Admin of the enclave, or
// a service account of either: who may manage the enclave beyond what
// policies grant (lifecycle, imports, other Admins).
func isAdmin(st *projections.State, identity, enclave string) bool {
	if identity == "" {
		return false
	}
	if identity == st.RootIdentity {
		return true
	}
	e := st.Enclaves[enclave]
	if e == nil {
		return false
	}
	x := e.Identities[identity]
	if x != nil && x.ServiceAccount {
		if x.Parent == st.RootIdentity {
			return true
		}
		x = e.Identities[x.Parent]
	}
	return x != nil && x.Privilege == ledger.PrivilegeAdmin
}

// guardIdentity refuses a change to an identity the caller does not
// outrank (creating, overwriting or deleting it, or assigning it a
// policy): root and the enclave's Admin-class identities (Admins, and
// service accounts of root or of an Admin) may change any identity of
// the enclave; anybody else, a User allowed IDENTITY:CREATE,
// IDENTITY:DELETE or POLICY:ASSIGN by policy, only User-class ones
// (Users and their service accounts), and may not make an Admin. So a
// User cannot escalate, lock the Admins out, or delete or re-parent a
// service account of an Admin or of root.
//
// It runs inside the decision (commands.Checked), under the enclave's
// lock, against the state the command applies to.
func guardIdentity(st *projections.State, caller, enclave, target string, makesAdmin bool) error {
	if isAdmin(st, caller, enclave) {
		return nil
	}
	if makesAdmin || target == st.RootIdentity || isAdmin(st, target, enclave) {
		return errPermission
	}
	return nil
}

// adminCheck is the access rule of the key lifecycle and import routes
// (root or an Admin of the enclave), decided again inside the command's
// decision (commands.Checked), under the enclave's lock, so that an Admin
// demoted or deleted meanwhile changes nothing.
func adminCheck(identity, enclave string) func(*projections.State) error {
	return func(st *projections.State) error {
		if !isAdmin(st, identity, enclave) {
			return errPermission
		}
		return nil
	}
}

// commandCheck is authorize(cmd, resource), decided again inside the
// command's decision (commands.Checked), under the enclave's lock.
func commandCheck(identity, enclave string, cmd wire.Command, resource string) func(*projections.State) error {
	return func(st *projections.State) error { return authorize(st, identity, enclave, cmd, resource) }
}
