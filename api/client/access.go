package client

import (
	"context"
	"fmt"

	"github.com/kmsledger/kmsledger/api/wire"
)

// CreatePolicy creates or replaces a policy (POLICY:CREATE).
func (c *Client) CreatePolicy(ctx context.Context, enclave string, req *wire.CreatePolicyRequest) error {
	return c.write(ctx, enclave, wire.CmdPolicyCreate, req)
}

// DeletePolicy deletes a policy (POLICY:DELETE).
func (c *Client) DeletePolicy(ctx context.Context, enclave, name string) error {
	return c.write(ctx, enclave, wire.CmdPolicyDelete, &wire.DeletePolicyRequest{Name: name})
}

// AssignPolicy assigns a policy to an identity (POLICY:ASSIGN).
func (c *Client) AssignPolicy(ctx context.Context, enclave, identity, policy string) error {
	return c.write(ctx, enclave, wire.CmdPolicyAssign, &wire.AssignPolicyRequest{Identity: identity, Policy: policy})
}

// GetPolicy returns a policy with its rules (POLICY:GET). Like the kms-go
// SDK, it rejects rules for commands it does not know.
func (c *Client) GetPolicy(ctx context.Context, enclave, name string) (*wire.PolicyResponse, error) {
	p, err := query[wire.PolicyResponse](ctx, c, enclave, wire.CmdPolicyGet, &wire.PolicyRequest{Name: name})
	if err != nil {
		return nil, err
	}
	for _, rules := range []map[string][]string{p.Allow, p.Deny} {
		for cmd := range rules {
			if _, err := wire.ParseCommand(cmd); err != nil {
				return nil, fmt.Errorf("%w: policy %q: %w", ErrProtocol, p.Name, err)
			}
		}
	}
	return p, nil
}

// PolicyStatus returns the status of a policy (POLICY:STATUS).
func (c *Client) PolicyStatus(ctx context.Context, enclave, name string) (*wire.PolicyStatusResponse, error) {
	return query[wire.PolicyStatusResponse](ctx, c, enclave, wire.CmdPolicyStatus, &wire.PolicyRequest{Name: name})
}

// ListPolicies returns one page of policies (POLICY:LIST); see ListEnclaves.
func (c *Client) ListPolicies(ctx context.Context, enclave, prefix, continueAt string, limit uint32) (*wire.ListPoliciesResponse, error) {
	req := &wire.ListRequest{Prefix: prefix, ContinueAt: continueAt, Limit: limit}
	return query[wire.ListPoliciesResponse](ctx, c, enclave, wire.CmdPolicyList, req)
}

// CreateIdentity creates or replaces an identity (IDENTITY:CREATE).
func (c *Client) CreateIdentity(ctx context.Context, enclave string, req *wire.CreateIdentityRequest) error {
	return c.write(ctx, enclave, wire.CmdIdentityCreate, req)
}

// DeleteIdentity deletes an identity (IDENTITY:DELETE).
func (c *Client) DeleteIdentity(ctx context.Context, enclave, identity string) error {
	return c.write(ctx, enclave, wire.CmdIdentityDelete, &wire.DeleteIdentityRequest{Identity: identity})
}

// GetIdentity returns an identity (IDENTITY:STATUS).
func (c *Client) GetIdentity(ctx context.Context, enclave, identity string) (*wire.IdentityResponse, error) {
	return query[wire.IdentityResponse](ctx, c, enclave, wire.CmdIdentityStatus, &wire.IdentityRequest{Identity: identity})
}

// ListIdentities returns one page of identities (IDENTITY:LIST); see
// ListEnclaves.
func (c *Client) ListIdentities(ctx context.Context, enclave, prefix, continueAt string, limit uint32) (*wire.ListIdentitiesResponse, error) {
	req := &wire.ListRequest{Prefix: prefix, ContinueAt: continueAt, Limit: limit}
	return query[wire.ListIdentitiesResponse](ctx, c, enclave, wire.CmdIdentityList, req)
}
