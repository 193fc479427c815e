package commands

import (
	"slices"

	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// createIdentity decides CreateIdentity: identity.created.v1.
func (d *decision) createIdentity(e *projections.Enclave, c CreateIdentity) (Decision, error) {
	if c.Identity == d.s.RootIdentity {
		return Decision{}, refuse(ErrInvalidArgument, "the root identity cannot be an enclave identity")
	}
	p := ledger.IdentityCreated{Identity: c.Identity, Privilege: c.Privilege, ServiceAccount: c.ServiceAccount, Tags: c.Tags}
	if p.Privilege == "" {
		p.Privilege = ledger.PrivilegeUser
	}
	if c.ServiceAccount {
		p.Parent = d.env.Actor
	}
	return d.event(e.Name, ledger.IdentitySubject(e.Name, c.Identity), ledger.TypeIdentityCreated, p)
}

// deleteIdentity decides DeleteIdentity: identity.deleted.v1, naming the
// service accounts deleted with it.
func (d *decision) deleteIdentity(e *projections.Enclave, c DeleteIdentity) (Decision, error) {
	if e.Identities[c.Identity] == nil {
		return Decision{}, ErrIdentityNotFound
	}
	var sas []string
	for _, id := range e.Identities {
		if id.ServiceAccount && id.Parent == c.Identity {
			sas = append(sas, id.Identity)
		}
	}
	slices.Sort(sas)
	return d.event(e.Name, ledger.IdentitySubject(e.Name, c.Identity), ledger.TypeIdentityDeleted,
		ledger.IdentityDeleted{Identity: c.Identity, ServiceAccounts: sas})
}

// assignPolicy decides AssignPolicy: identity.policy_assigned.v1.
func (d *decision) assignPolicy(e *projections.Enclave, c AssignPolicy) (Decision, error) {
	if e.Identities[c.Identity] == nil {
		return Decision{}, ErrIdentityNotFound
	}
	if e.Policies[c.Policy] == nil {
		return Decision{}, ErrPolicyNotFound
	}
	return d.event(e.Name, ledger.IdentitySubject(e.Name, c.Identity), ledger.TypePolicyAssigned,
		ledger.PolicyAssigned{Identity: c.Identity, Policy: c.Policy})
}
