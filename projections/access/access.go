package access

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// Ways a Grant is given (the values of Grant.Via).
const (
	ViaRoot   = "root"   // the root (SysAdmin) identity
	ViaAdmin  = "admin"  // an Admin of the enclave, a service account of one, or of root
	ViaPolicy = "policy" // a User's policy, or a service account's parent's
)

// Grant is the reason an identity may run a command on a resource.
type Grant struct {
	Identity string            // the caller
	Via      string            // ViaRoot, ViaAdmin or ViaPolicy
	Parent   string            // a service account's parent, whose rights it has
	Policy   string            // ViaPolicy: the policy
	Rule     string            // ViaPolicy: the allow pattern that matched
	Reason   string            // one line for people
	Tags     map[string]string // the identity's tags (not for root)
}

// Explain returns the grant by which identity may run cmd on resource in
// enclave, and whether there is one (the rules are in the package doc).
// resource is the command's argument: a key name for KEY:*, a policy name
// for POLICY:*, an identity for IDENTITY:*, "" for listings (a listing is
// allowed by any allow pattern of the command, and reports the first).
func Explain(st *projections.State, identity, enclave string, cmd wire.Command, resource string) (Grant, bool) {
	if IsRoot(st, identity) {
		return Grant{Identity: identity, Via: ViaRoot, Reason: "the root identity may do everything"}, true
	}
	if !cmd.Scope().InEnclave() {
		return Grant{}, false
	}
	e := st.Enclaves[enclave]
	if e == nil {
		return Grant{}, false
	}
	x := e.Identities[identity]
	if x == nil {
		return Grant{}, false
	}
	g := Grant{Identity: x.Identity, Tags: x.Tags}
	eff, as := x, ""
	if x.ServiceAccount {
		g.Parent = x.Parent
		if x.Parent == st.RootIdentity {
			g.Via, g.Reason = ViaAdmin, "service account of the root identity: an Admin of the enclave"
			return g, true
		}
		if eff = e.Identities[x.Parent]; eff == nil {
			return Grant{}, false
		}
		as = "service account of " + x.Parent + ", which is "
	}
	if eff.Privilege == ledger.PrivilegeAdmin {
		g.Via, g.Reason = ViaAdmin, as+"an Admin of the enclave"
		return g, true
	}
	p := e.Policies[eff.Policy]
	if p == nil {
		return Grant{}, false
	}
	name := cmd.String()
	if matchAny(p.Deny[name], resource) {
		return Grant{}, false
	}
	var rule string
	if isList(cmd) {
		if len(p.Allow[name]) == 0 {
			return Grant{}, false
		}
		rule = p.Allow[name][0]
	} else {
		var ok bool
		if rule, ok = firstMatch(p.Allow[name], resource); !ok {
			return Grant{}, false
		}
	}
	g.Via, g.Policy, g.Rule = ViaPolicy, p.Name, rule
	g.Reason = fmt.Sprintf("%sa User whose policy %q allows %s on %q", as, p.Name, name, rule)
	return g, true
}

// Authorize reports whether identity may run cmd on resource in enclave:
// whether Explain finds a grant.
func Authorize(st *projections.State, identity, enclave string, cmd wire.Command, resource string) bool {
	_, ok := Explain(st, identity, enclave, cmd, resource)
	return ok
}

// WhoCan returns the grant of every identity that may run cmd on resource
// in enclave, as Explain gives it: the root identity first, then the
// enclave's identities by name. Without a root identity (an
// uninitialised state) it returns nil.
func WhoCan(st *projections.State, enclave, resource string, cmd wire.Command) []Grant {
	if st.RootIdentity == "" {
		return nil
	}
	candidates := []string{st.RootIdentity}
	if e := st.Enclaves[enclave]; e != nil {
		for _, id := range slices.Sorted(maps.Keys(e.Identities)) {
			if id != st.RootIdentity {
				candidates = append(candidates, id)
			}
		}
	}
	var out []Grant
	for _, id := range candidates {
		if g, ok := Explain(st, id, enclave, cmd, resource); ok {
			out = append(out, g)
		}
	}
	return out
}

// IsRoot reports whether identity is the root (SysAdmin) identity.
func IsRoot(st *projections.State, identity string) bool {
	return identity != "" && identity == st.RootIdentity
}

// IsMember reports whether identity may reach enclave at all: it is the
// root identity or one of the enclave's identities.
func IsMember(st *projections.State, identity, enclave string) bool {
	if IsRoot(st, identity) {
		return true
	}
	e := st.Enclaves[enclave]
	return e != nil && e.Identities[identity] != nil
}

// IsAdmin reports whether identity is root, an Admin of the enclave, or
// a service account of either: who may manage the enclave beyond what
// policies grant (lifecycle, imports, other Admins).
func IsAdmin(st *projections.State, identity, enclave string) bool {
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
	x, viaRoot := rights(st, e, e.Identities[identity])
	return viaRoot || (x != nil && x.Privilege == ledger.PrivilegeAdmin)
}

// MayChangeIdentity reports whether caller may change the identity target
// of enclave (create, overwrite or delete it, or assign it a policy);
// makesAdmin is whether the change gives it the Admin privilege. Root and
// the enclave's Admin-class identities (Admins, and service accounts of
// root or of an Admin) may change any identity of the enclave; anybody
// else, a User allowed IDENTITY:CREATE, IDENTITY:DELETE or POLICY:ASSIGN
// by policy, only User-class ones (Users and their service accounts), and
// may not make an Admin. So a User cannot escalate, lock the Admins out,
// or delete or re-parent a service account of an Admin or of root.
func MayChangeIdentity(st *projections.State, caller, enclave, target string, makesAdmin bool) bool {
	if IsAdmin(st, caller, enclave) {
		return true
	}
	return !makesAdmin && target != st.RootIdentity && !IsAdmin(st, target, enclave)
}

// rights returns the identity whose rights x has: x itself, or a service
// account's parent (nil if the parent is gone). viaRoot reports a service
// account of the root identity, which has no identity in the enclave and
// counts as an Admin of it.
func rights(st *projections.State, e *projections.Enclave, x *projections.Identity) (eff *projections.Identity, viaRoot bool) {
	if x == nil || !x.ServiceAccount {
		return x, false
	}
	if x.Parent == st.RootIdentity {
		return nil, true
	}
	return e.Identities[x.Parent], false
}

// isList reports whether cmd lists (its resource is always "").
func isList(cmd wire.Command) bool {
	switch cmd {
	case wire.CmdEnclaveList, wire.CmdKeyList, wire.CmdPolicyList, wire.CmdIdentityList:
		return true
	}
	return false
}

// IsList reports whether cmd is a listing, which policies allow by any
// allow pattern of the command and whose resource is "".
func IsList(cmd wire.Command) bool { return isList(cmd) }

// Match reports whether pattern matches name: "*" matches everything,
// "prefix*" every name starting with prefix, any other pattern only
// itself. Policies, and the filters of the ledger queries, use it.
func Match(pattern, name string) bool {
	if pattern == "*" || pattern == name {
		return true
	}
	prefix, ok := strings.CutSuffix(pattern, "*")
	return ok && strings.HasPrefix(name, prefix)
}

// matchAny reports whether one of patterns matches name (Match).
func matchAny(patterns []string, name string) bool {
	_, ok := firstMatch(patterns, name)
	return ok
}

// firstMatch returns the first of patterns that matches name (Match).
func firstMatch(patterns []string, name string) (string, bool) {
	for _, p := range patterns {
		if Match(p, name) {
			return p, true
		}
	}
	return "", false
}
