package api

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// Page sizes of the list commands (spec §3): Limit 0 means ours.
const (
	defaultPage = 1000
	maxPage     = 1000
)

func isNotFound(err error) bool {
	return errors.Is(err, projections.ErrKeyNotFound) || errors.Is(err, projections.ErrEnclaveNotFound) ||
		errors.Is(err, commands.ErrEnclaveNotFound) || errors.Is(err, commands.ErrKeyNotFound) ||
		errors.Is(err, commands.ErrPolicyNotFound) || errors.Is(err, commands.ErrIdentityNotFound)
}

// read runs lookup under the projection's read lock; on a "not found" it
// catches up with the ledger head and looks again.
func (s *Server) read(ctx context.Context, lookup func(*projections.State) (message, error)) (message, error) {
	var (
		m   message
		err error
	)
	s.proj.View(func(st *projections.State) { m, err = lookup(st) })
	if isNotFound(err) {
		if cerr := s.proj.CatchUp(ctx); cerr != nil {
			return nil, cerr
		}
		s.proj.View(func(st *projections.State) { m, err = lookup(st) })
	}
	return m, err
}

func enclaveOf(st *projections.State, name string) (*projections.Enclave, error) {
	if e := st.Enclaves[name]; e != nil {
		return e, nil
	}
	return nil, commands.ErrEnclaveNotFound
}

func (s *Server) enclaveStatus(ctx context.Context, name string) (message, error) {
	return s.read(ctx, func(st *projections.State) (message, error) {
		e, err := enclaveOf(st, name)
		if err != nil {
			return nil, err
		}
		return &wire.EnclaveStatusResponse{Name: e.Name, CreatedAt: e.CreatedAt, CreatedBy: e.CreatedBy}, nil
	})
}

func (s *Server) policy(ctx context.Context, enclave, name string) (message, error) {
	return s.read(ctx, func(st *projections.State) (message, error) {
		p, err := policyOf(st, enclave, name)
		if err != nil {
			return nil, err
		}
		return &wire.PolicyResponse{Name: p.Name, Allow: p.Allow, Deny: p.Deny, CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy}, nil
	})
}

func (s *Server) policyStatus(ctx context.Context, enclave, name string) (message, error) {
	return s.read(ctx, func(st *projections.State) (message, error) {
		p, err := policyOf(st, enclave, name)
		if err != nil {
			return nil, err
		}
		return &wire.PolicyStatusResponse{Name: p.Name, CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy}, nil
	})
}

func policyOf(st *projections.State, enclave, name string) (*projections.Policy, error) {
	e, err := enclaveOf(st, enclave)
	if err != nil {
		return nil, err
	}
	if p := e.Policies[name]; p != nil {
		return p, nil
	}
	return nil, commands.ErrPolicyNotFound
}

func (s *Server) identity(ctx context.Context, enclave, id string) (message, error) {
	return s.read(ctx, func(st *projections.State) (message, error) {
		if id == st.RootIdentity {
			return &wire.IdentityResponse{Identity: id, Privilege: 1}, nil
		}
		e, err := enclaveOf(st, enclave)
		if err != nil {
			return nil, err
		}
		x := e.Identities[id]
		if x == nil {
			return nil, commands.ErrIdentityNotFound
		}
		return identityResponse(x, e.ServiceAccounts(x.Identity)), nil
	})
}

func identityResponse(x *projections.Identity, serviceAccounts []string) *wire.IdentityResponse {
	r := &wire.IdentityResponse{
		Identity: x.Identity, Privilege: 3, Policy: x.Policy, CreatedAt: x.CreatedAt, CreatedBy: x.CreatedBy,
		IsServiceAccount: x.ServiceAccount, Tags: x.Tags,
	}
	if x.Privilege == ledger.PrivilegeAdmin {
		r.Privilege = 2
	}
	r.ServiceAccounts = slices.Clone(serviceAccounts)
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
// ContinueAt is the first name of the next page. A page costs
// O(log n + page): the projection keeps the names, and the service
// accounts of every identity, indexed.
func (s *Server) list(ctx context.Context, enclave string, cmd wire.Command, m *wire.ListRequest) (message, error) {
	limit := int(m.Limit)
	if limit == 0 || limit > maxPage {
		limit = defaultPage
	}
	return s.read(ctx, func(st *projections.State) (message, error) { return listPage(st, enclave, cmd, m, limit) })
}

// listPage is one page of a list command on st.
func listPage(st *projections.State, enclave string, cmd wire.Command, m *wire.ListRequest, limit int) (message, error) {
	if cmd == wire.CmdEnclaveList {
		names, next := page(slices.Sorted(maps.Keys(st.Enclaves)), m, limit)
		r := &wire.ListEnclavesResponse{ContinueAt: next}
		for _, n := range names {
			e := st.Enclaves[n]
			r.Enclaves = append(r.Enclaves, wire.EnclaveStatusResponse{Name: n, CreatedAt: e.CreatedAt, CreatedBy: e.CreatedBy})
		}
		return r, nil
	}
	e, err := enclaveOf(st, enclave)
	if err != nil {
		return nil, err
	}
	switch cmd {
	case wire.CmdKeyList:
		names, next := page(e.KeyNames(), m, limit)
		r := &wire.ListKeysResponse{ContinueAt: next, Keys: make([]wire.KeyStatusResponse, 0, len(names))}
		for _, n := range names {
			v := e.Keys[n].Latest()
			r.Keys = append(r.Keys, wire.KeyStatusResponse{Name: n, Version: v.Version, Type: v.Type, CreatedAt: v.CreatedAt, CreatedBy: v.CreatedBy})
		}
		return r, nil
	case wire.CmdPolicyList:
		names, next := page(e.PolicyNames(), m, limit)
		r := &wire.ListPoliciesResponse{ContinueAt: next, Policies: make([]wire.PolicyStatusResponse, 0, len(names))}
		for _, n := range names {
			p := e.Policies[n]
			r.Policies = append(r.Policies, wire.PolicyStatusResponse{Name: n, CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy})
		}
		return r, nil
	default:
		names, next := page(e.IdentityNames(), m, limit)
		r := &wire.ListIdentitiesResponse{ContinueAt: next, Identities: make([]wire.IdentityResponse, 0, len(names))}
		for _, n := range names {
			x := identityResponse(e.Identities[n], e.ServiceAccounts(n))
			r.Identities = append(r.Identities, *x)
		}
		return r, nil
	}
}

// page returns at most limit of the sorted names that start with the
// prefix, from the first name >= ContinueAt, and the first name of the
// next page ("" at the end).
func page(names []string, m *wire.ListRequest, limit int) (out []string, next string) {
	if m.ContinueAt != "" && !strings.HasPrefix(m.ContinueAt, m.Prefix) {
		return nil, ""
	}
	start := max(m.Prefix, m.ContinueAt)
	i, _ := slices.BinarySearch(names, start)
	j := i
	for ; j < len(names) && j-i < limit && strings.HasPrefix(names[j], m.Prefix); j++ {
	}
	if j < len(names) && j-i == limit && strings.HasPrefix(names[j], m.Prefix) {
		next = names[j]
	}
	return names[i:j], next
}
