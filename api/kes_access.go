package api

// Policy and identity endpoints of the KES API (README.md, "Migrating from KES, and the KES API").
// Identities
// appear in KES form (lowercase hex); policies as KES path patterns
// converted from the enclave's command rules (kescompat.PolicyPaths).

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/migrate/kescompat"
	"github.com/kmsledger/kmsledger/projections"
)

// kesPolicy is the body of /v1/policy/read (and, without rules, of
// /v1/policy/describe).
type kesPolicy struct {
	Name      string              `json:"name"`
	Allow     map[string]struct{} `json:"allow,omitempty"`
	Deny      map[string]struct{} `json:"deny,omitempty"`
	CreatedAt time.Time           `json:"created_at"`
	CreatedBy string              `json:"created_by"`
}

func (k *kesAPI) policy(w http.ResponseWriter, r *http.Request, req *kesRequest, rules bool) {
	var out kesPolicy
	err := k.view(req.ctx, func(_ *projections.State, e *projections.Enclave) error {
		p := e.Policies[req.arg]
		if p == nil {
			return commands.ErrPolicyNotFound
		}
		out = kesPolicy{Name: p.Name, CreatedAt: p.CreatedAt, CreatedBy: kescompat.KESIdentity(p.CreatedBy)}
		if rules {
			out.Allow, out.Deny = kescompat.PolicyPaths(p.Allow), kescompat.PolicyPaths(p.Deny)
		}
		return nil
	})
	k.reply(w, r, out, err)
}

func (k *kesAPI) describePolicy(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	k.policy(w, r, req, false)
}

func (k *kesAPI) readPolicy(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	k.policy(w, r, req, true)
}

func (k *kesAPI) listPolicies(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	var out kesNameList
	err := k.view(req.ctx, func(_ *projections.State, e *projections.Enclave) error {
		out.Names = matchPrefix(slices.Collect(maps.Keys(e.Policies)), req.arg)
		return nil
	})
	k.reply(w, r, out, err)
}

// kesIdentityInfo is the body of /v1/identity/describe and, with Identity
// and the policy's rules, of /v1/identity/self/describe.
type kesIdentityInfo struct {
	Identity  string              `json:"identity,omitempty"`
	Admin     bool                `json:"admin,omitempty"`
	Policy    string              `json:"policy,omitempty"`
	Allow     map[string]struct{} `json:"allow,omitempty"`
	Deny      map[string]struct{} `json:"deny,omitempty"`
	CreatedAt *time.Time          `json:"created_at,omitempty"`
	CreatedBy string              `json:"created_by,omitempty"`
}

// kesDescribe describes identity id (h1:) of enclave e: root and Admins
// are "admin"; a service account has its parent's rights.
func kesDescribe(st *projections.State, e *projections.Enclave, id string) (kesIdentityInfo, *projections.Policy, error) {
	if id == st.RootIdentity {
		return kesIdentityInfo{Admin: true}, nil, nil
	}
	x := e.Identities[id]
	if x == nil {
		return kesIdentityInfo{}, nil, commands.ErrIdentityNotFound
	}
	created := x.CreatedAt
	info := kesIdentityInfo{CreatedAt: &created, CreatedBy: kescompat.KESIdentity(x.CreatedBy)}
	rights := x
	if x.ServiceAccount {
		if x.Parent == st.RootIdentity {
			info.Admin = true
			return info, nil, nil
		}
		if rights = e.Identities[x.Parent]; rights == nil {
			return info, nil, nil
		}
	}
	if rights.Privilege == ledger.PrivilegeAdmin {
		info.Admin = true
		return info, nil, nil
	}
	info.Policy = rights.Policy
	return info, e.Policies[rights.Policy], nil
}

func (k *kesAPI) describeIdentity(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	var out kesIdentityInfo
	err := k.view(req.ctx, func(st *projections.State, e *projections.Enclave) (err error) {
		out, _, err = kesDescribe(st, e, req.arg)
		return err
	})
	k.reply(w, r, out, err)
}

// describeSelf describes the caller and its policy's rules. Unlike KES it
// answers for every identity, not only the admin.
func (k *kesAPI) describeSelf(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	var out kesIdentityInfo
	err := k.view(req.ctx, func(st *projections.State, e *projections.Enclave) error {
		info, p, err := kesDescribe(st, e, req.identity)
		if err != nil {
			return err
		}
		out = info
		out.Identity = kescompat.KESIdentity(req.identity)
		if p != nil {
			out.Allow, out.Deny = kescompat.PolicyPaths(p.Allow), kescompat.PolicyPaths(p.Deny)
		}
		return nil
	})
	k.reply(w, r, out, err)
}

// listIdentities lists the enclave's identities and root, in KES form,
// sorted, with the hex prefix.
func (k *kesAPI) listIdentities(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	var out struct {
		Identities []string `json:"identities"`
		ContinueAt string   `json:"continue_at"`
	}
	err := k.view(req.ctx, func(st *projections.State, e *projections.Enclave) error {
		ids := make([]string, 0, len(e.Identities)+1)
		if st.RootIdentity != "" {
			ids = append(ids, kescompat.KESIdentity(st.RootIdentity))
		}
		for id := range e.Identities {
			ids = append(ids, kescompat.KESIdentity(id))
		}
		out.Identities = slices.Compact(matchPrefix(ids, strings.ToLower(req.arg)))
		return nil
	})
	k.reply(w, r, out, err)
}
