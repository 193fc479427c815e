package api

import (
	"context"
	"strings"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections/keys"
)

// isNotFound reports whether err says that something does not exist
// (keys.IsNotFound).
func isNotFound(err error) bool { return keys.IsNotFound(err) }

// The ENCLAVE:STATUS, POLICY:*, IDENTITY:STATUS and list reads of the kms
// API: each translates its wire message to a call of the read-and-crypto
// service (projections/keys) and its answer back.

func (s *Server) enclaveStatus(ctx context.Context, name string) (message, error) {
	e, err := s.keys.EnclaveStatus(ctx, name)
	if err != nil {
		return nil, err
	}
	return &wire.EnclaveStatusResponse{Name: e.Name, CreatedAt: e.CreatedAt, CreatedBy: e.CreatedBy}, nil
}

func (s *Server) policy(ctx context.Context, enclave, name string) (message, error) {
	p, err := s.keys.Policy(ctx, enclave, name)
	if err != nil {
		return nil, err
	}
	return &wire.PolicyResponse{Name: p.Name, Allow: p.Allow, Deny: p.Deny, CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy}, nil
}

func (s *Server) policyStatus(ctx context.Context, enclave, name string) (message, error) {
	p, err := s.keys.Policy(ctx, enclave, name)
	if err != nil {
		return nil, err
	}
	return &wire.PolicyStatusResponse{Name: p.Name, CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy}, nil
}

func (s *Server) identity(ctx context.Context, enclave, id string) (message, error) {
	x, err := s.keys.Identity(ctx, enclave, id)
	if err != nil {
		return nil, err
	}
	return identityResponse(&x), nil
}

// identityResponse is x in the kms API's words: privilege 1 is root, 2 an
// enclave Admin, 3 a User.
func identityResponse(x *keys.Identity) *wire.IdentityResponse {
	if x.Root {
		return &wire.IdentityResponse{Identity: x.Identity, Privilege: 1}
	}
	r := &wire.IdentityResponse{
		Identity: x.Identity, Privilege: 3, Policy: x.Policy, CreatedAt: x.CreatedAt, CreatedBy: x.CreatedBy,
		IsServiceAccount: x.ServiceAccount, Tags: x.Tags, ServiceAccounts: x.ServiceAccounts,
	}
	if x.Privilege == ledger.PrivilegeAdmin {
		r.Privilege = 2
	}
	return r
}

// createIdentity returns the command of IDENTITY:CREATE, which creates or
// overwrites an identity. Who may create or overwrite which identity is
// checked inside the decision (guardIdentity).
func createIdentity(enclave string, m *wire.CreateIdentityRequest) (commands.Command, error) {
	priv := m.Privilege
	switch strings.ToLower(priv) {
	case "", "user":
		priv = ledger.PrivilegeUser
	case "admin":
		priv = ledger.PrivilegeAdmin
	default:
		return nil, badRequest("invalid privilege %q: want Admin or User", truncate(m.Privilege))
	}
	return commands.CreateIdentity{
		Enclave: enclave, Identity: m.Identity, Privilege: priv, ServiceAccount: m.IsServiceAccount, Tags: m.Tags,
	}, nil
}

// list answers the four list commands (spec §3): names sorted, only those
// with the prefix, starting at ContinueAt (inclusive); the response's
// ContinueAt is the first name of the next page (keys.Service.List*).
func (s *Server) list(ctx context.Context, enclave string, cmd wire.Command, m *wire.ListRequest) (message, error) {
	p := keys.Page{Prefix: m.Prefix, ContinueAt: m.ContinueAt, Limit: int(m.Limit)}
	switch cmd {
	case wire.CmdEnclaveList:
		es, next, err := s.keys.ListEnclaves(ctx, p)
		if err != nil {
			return nil, err
		}
		r := &wire.ListEnclavesResponse{ContinueAt: next}
		for _, e := range es {
			r.Enclaves = append(r.Enclaves, wire.EnclaveStatusResponse{Name: e.Name, CreatedAt: e.CreatedAt, CreatedBy: e.CreatedBy})
		}
		return r, nil
	case wire.CmdKeyList:
		ks, next, err := s.keys.ListKeys(ctx, enclave, p)
		if err != nil {
			return nil, err
		}
		r := &wire.ListKeysResponse{ContinueAt: next, Keys: make([]wire.KeyStatusResponse, 0, len(ks))}
		for _, k := range ks {
			r.Keys = append(r.Keys, wire.KeyStatusResponse{Name: k.Name, Version: k.Version, Type: k.Type, CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy})
		}
		return r, nil
	case wire.CmdPolicyList:
		ps, next, err := s.keys.ListPolicies(ctx, enclave, p)
		if err != nil {
			return nil, err
		}
		r := &wire.ListPoliciesResponse{ContinueAt: next, Policies: make([]wire.PolicyStatusResponse, 0, len(ps))}
		for _, x := range ps {
			r.Policies = append(r.Policies, wire.PolicyStatusResponse{Name: x.Name, CreatedAt: x.CreatedAt, CreatedBy: x.CreatedBy})
		}
		return r, nil
	default:
		xs, next, err := s.keys.ListIdentities(ctx, enclave, p)
		if err != nil {
			return nil, err
		}
		r := &wire.ListIdentitiesResponse{ContinueAt: next, Identities: make([]wire.IdentityResponse, 0, len(xs))}
		for i := range xs {
			r.Identities = append(r.Identities, *identityResponse(&xs[i]))
		}
		return r, nil
	}
}
