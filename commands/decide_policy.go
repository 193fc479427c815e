package commands

import (
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// createPolicy decides CreatePolicy: policy.created.v1.
func (d *decision) createPolicy(e *projections.Enclave, c CreatePolicy) (Decision, error) {
	// The API parses rules at its edge; parsing again here keeps every
	// writer (migration, tools, tests) from storing a rule that would be
	// ignored.
	allow, err := wire.ParseRules(c.Allow)
	if err != nil {
		return Decision{}, refuseCause(ErrInvalidArgument, "allow rules", err)
	}
	deny, err := wire.ParseRules(c.Deny)
	if err != nil {
		return Decision{}, refuseCause(ErrInvalidArgument, "deny rules", err)
	}
	return d.event(e.Name, ledger.PolicySubject(e.Name, c.Name), ledger.TypePolicyCreated,
		ledger.PolicyCreated{Name: c.Name, Allow: allow, Deny: deny})
}

// deletePolicy decides DeletePolicy: policy.deleted.v1.
func (d *decision) deletePolicy(e *projections.Enclave, c DeletePolicy) (Decision, error) {
	if e.Policies[c.Name] == nil {
		return Decision{}, ErrPolicyNotFound
	}
	return d.event(e.Name, ledger.PolicySubject(e.Name, c.Name), ledger.TypePolicyDeleted, ledger.PolicyDeleted{Name: c.Name})
}
