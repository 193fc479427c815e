// The policy part of a run: the policies of a KES config, and its
// identities with their policy assignments (the admin becomes an Admin of
// the enclave), so the same clients keep the same rights.

package migrate

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/migrate/kescompat"
)

// PolicyStats count what the policy part of a run did.
type PolicyStats struct {
	Policies   int // policies created or changed
	Identities int // identities created or changed
	Unchanged  int // policies and identities that already held what KES says
	Unmappable int // policies with rules that have no kmsledger equivalent
}

// migratePolicies imports the policies of cfg and its identities.
// Policies and identities that already hold what KES says are left alone,
// so a re-run appends nothing. A policy with unmappable rules is imported
// with the rules that map, and reported.
func (m *migration) migratePolicies(ctx context.Context, cfg *Config) (PolicyStats, error) {
	var st PolicyStats
	for _, name := range slices.Sorted(maps.Keys(cfg.Policies)) {
		p := cfg.Policies[name]
		pname, err := kescompat.KeyName(name)
		if err != nil {
			return st, err
		}
		allow, deny, err := kescompat.PolicyRules(p.Allow, p.Deny)
		if err != nil {
			// Report and go on: the identities lose exactly these rights.
			st.Unmappable++
			m.say("policy %q: %v", name, err)
		}
		want := &wire.CreatePolicyRequest{Name: pname, Allow: allow, Deny: deny}
		if m.opts.DryRun {
			m.say("would import policy %s", pname)
		} else if changed, err := m.putPolicy(ctx, want); err != nil {
			return st, err
		} else if changed {
			st.Policies++
		} else {
			st.Unchanged++
		}
		for _, hexID := range p.Identities {
			id, ok := kescompat.H1(hexID)
			if !ok {
				m.say("policy %q: identity %q is not a KES identity: skipped", name, hexID)
				continue
			}
			if err := m.putIdentity(ctx, &st, id, "User", pname); err != nil {
				return st, err
			}
		}
	}
	if id, ok := kescompat.H1(cfg.Admin); ok {
		if err := m.putIdentity(ctx, &st, id, "Admin", ""); err != nil {
			return st, err
		}
	}
	return st, nil
}

// putPolicy creates the policy unless an equal one exists.
func (m *migration) putPolicy(ctx context.Context, want *wire.CreatePolicyRequest) (bool, error) {
	have, err := m.imp.GetPolicy(ctx, m.opts.Enclave, want.Name)
	switch {
	case err == nil && equalRules(have.Allow, want.Allow) && equalRules(have.Deny, want.Deny):
		return false, nil
	case err != nil && !errors.Is(err, client.ErrPolicyNotFound):
		return false, err
	}
	return true, m.imp.CreatePolicy(ctx, m.opts.Enclave, want)
}

func equalRules(a, b map[string][]string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// putIdentity creates the identity (and assigns policy) unless it is
// there with that privilege and policy already.
func (m *migration) putIdentity(ctx context.Context, st *PolicyStats, id, privilege, policy string) error {
	if m.opts.DryRun {
		m.say("would import identity %s (%s, policy %q)", id, privilege, policy)
		return nil
	}
	have, err := m.imp.GetIdentity(ctx, m.opts.Enclave, id)
	switch {
	case err == nil && wire.PrivilegeName(have.Privilege) == privilege && have.Policy == policy:
		st.Unchanged++
		return nil
	case err != nil && !errors.Is(err, client.ErrIdentityNotFound):
		return err
	}
	if err != nil || wire.PrivilegeName(have.Privilege) != privilege {
		if err := m.imp.CreateIdentity(ctx, m.opts.Enclave, &wire.CreateIdentityRequest{Identity: id, Privilege: privilege}); err != nil {
			return err
		}
	}
	if policy != "" {
		if err := m.imp.AssignPolicy(ctx, m.opts.Enclave, id, policy); err != nil {
			return err
		}
	}
	st.Identities++
	return nil
}
