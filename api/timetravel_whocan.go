package api

import (
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// Grant is one identity allowed to run a command, and why (the JSON type
// of the who-can endpoint).
type Grant = client.Grant

// WhoCan returns every identity that st allows to run cmd (a command's
// text name, e.g. "KEY:DECRYPT") on resource key in enclave, and why: the
// root identity, Admins of the enclave, Users through which policy and
// which allow rule (a matching deny rule wins), and service accounts
// through their parent. key is the command's argument as authorize sees
// it: a key name for KEY:*, a policy name for POLICY:*, an identity for
// IDENTITY:*, "" for listings. The root identity comes first, then the
// enclave's identities by name. An unknown command gives nil.
//
// It follows the rules of authorize exactly: an identity is listed if and
// only if authorize(st, identity, enclave, cmd, key) allows it
// (TestWhoCanMatchesAuthorize checks this over a grid).
func WhoCan(st *projections.State, enclave, key string, cmd string) []Grant {
	c, err := wire.ParseCommand(cmd)
	if err != nil || st.RootIdentity == "" {
		return nil
	}
	out := []Grant{{Identity: st.RootIdentity, Via: client.ViaRoot, Reason: "the root identity may do everything"}}
	e := st.Enclaves[enclave]
	if e == nil || !c.Scope().InEnclave() { // cluster and enclave commands: root only
		return out
	}
	for _, id := range slices.Sorted(maps.Keys(e.Identities)) {
		if id == st.RootIdentity {
			continue
		}
		if g, ok := explain(st, e, e.Identities[id], c, key); ok {
			out = append(out, g)
		}
	}
	return out
}

// explain decides whether identity x of e may run c on resource, with
// the reason.
func explain(st *projections.State, e *projections.Enclave, x *projections.Identity, c wire.Command, resource string) (Grant, bool) {
	g := Grant{Identity: x.Identity, Tags: x.Tags}
	eff, as := x, ""
	if x.ServiceAccount {
		g.Parent = x.Parent
		if x.Parent == st.RootIdentity {
			g.Via, g.Reason = client.ViaAdmin, "service account of the root identity: an Admin of the enclave"
			return g, true
		}
		if eff = e.Identities[x.Parent]; eff == nil {
			return g, false
		}
		as = "service account of " + x.Parent + ", which is "
	}
	if eff.Privilege == ledger.PrivilegeAdmin {
		g.Via, g.Reason = client.ViaAdmin, as+"an Admin of the enclave"
		return g, true
	}
	p := e.Policies[eff.Policy]
	if p == nil {
		return g, false
	}
	name := c.String()
	if matchAny(p.Deny[name], resource) {
		return g, false
	}
	var rule string
	if isList(c) {
		if len(p.Allow[name]) == 0 {
			return g, false
		}
		rule = p.Allow[name][0]
	} else {
		var ok bool
		if rule, ok = firstMatch(p.Allow[name], resource); !ok {
			return g, false
		}
	}
	g.Via, g.Policy, g.Rule = client.ViaPolicy, p.Name, rule
	g.Reason = fmt.Sprintf("%sa User whose policy %q allows %s on %q", as, p.Name, name, rule)
	return g, true
}

// firstMatch returns the first of patterns that matches name (as matchAny).
func firstMatch(patterns []string, name string) (string, bool) {
	for _, p := range patterns {
		if matchAny([]string{p}, name) {
			return p, true
		}
	}
	return "", false
}

func (s *Server) handleWhoCan(w http.ResponseWriter, r *http.Request, in routeReq) {
	q := r.URL.Query()
	enclave, key, command := q.Get("enclave"), q.Get("key"), q.Get("command")
	p, err := pointParam(q)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	c, err := wire.ParseCommand(command)
	switch {
	case err != nil:
		writeError(w, r, s.log, badRequest("invalid command %q: want e.g. KEY:DECRYPT", command))
		return
	case enclave == "":
		writeError(w, r, s.log, badRequest("the enclave parameter is required"))
		return
	case isList(c):
		key = ""
	case key == "":
		writeError(w, r, s.log, badRequest("the key parameter is required for %s", c))
		return
	}
	st, err := s.pastState(in.ctx, in.scope, p)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := client.WhoCanResult{Seq: st.Seq, Enclave: enclave, Key: key, Command: c.String(), Grants: WhoCan(st, enclave, key, c.String())}
	if out.Grants == nil {
		out.Grants = []Grant{}
	}
	writeJSON(w, r, s, jsonMessage{out}, nil)
}
