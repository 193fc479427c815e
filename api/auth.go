package api

import (
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/projections"
	authz "github.com/kmsledger/kmsledger/projections/access"
)

// The access rules live in package projections/access (imported as authz:
// in this package, access is the route's access level, routes.go); these
// are their HTTP-side names, which turn a refusal into errPermission.

// authorize decides whether identity may run cmd on resource in enclave
// (authz.Authorize; the rules are in its package doc). resource is the command's
// argument: a key name for KEY:*, a policy name for POLICY:*, an identity
// for IDENTITY:*, "" for listings.
func authorize(st *projections.State, identity, enclave string, cmd wire.Command, resource string) error {
	if !authz.Authorize(st, identity, enclave, cmd, resource) {
		return errPermission
	}
	return nil
}

// isList reports whether cmd is a listing (authz.IsList).
func isList(cmd wire.Command) bool { return authz.IsList(cmd) }

// matchAny reports whether one of patterns matches name (authz.Match):
// "*" matches everything, "prefix*" every name starting with prefix, any
// other pattern only itself.
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if authz.Match(p, name) {
			return true
		}
	}
	return false
}

// isAdmin reports whether identity is root, an Admin of the enclave, or
// a service account of either (authz.IsAdmin).
func isAdmin(st *projections.State, identity, enclave string) bool {
	return authz.IsAdmin(st, identity, enclave)
}

// guardIdentity refuses a change to an identity the caller does not
// outrank (authz.MayChangeIdentity): creating, overwriting or deleting
// it, or assigning it a policy.
//
// It runs inside the decision (commands.Checked), under the enclave's
// lock, against the state the command applies to.
func guardIdentity(st *projections.State, caller, enclave, target string, makesAdmin bool) error {
	if !authz.MayChangeIdentity(st, caller, enclave, target, makesAdmin) {
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
