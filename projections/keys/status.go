package keys

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// EnclaveStatus describes an enclave.
type EnclaveStatus struct {
	Name      string
	CreatedAt time.Time
	CreatedBy string
}

// KeyStatus describes one version of a key.
type KeyStatus struct {
	Name      string
	Version   uint32
	Type      string
	CreatedAt time.Time
	CreatedBy string
}

// Policy is a policy; Allow and Deny are shared with the projection (a
// policy is replaced, never changed, by the events that update it): do
// not change them. The list pages leave them nil.
type Policy struct {
	Name        string
	Allow, Deny map[string][]string
	CreatedAt   time.Time
	CreatedBy   string
}

// Identity describes an identity. Root is the cluster's root identity,
// which belongs to no enclave (only Identity is set then); Privilege is
// ledger.PrivilegeAdmin or ledger.PrivilegeUser otherwise. Tags are shared
// with the projection: do not change them.
type Identity struct {
	Identity        string
	Root            bool
	Privilege       string
	Policy          string
	CreatedAt       time.Time
	CreatedBy       string
	ServiceAccount  bool
	Tags            map[string]string
	ServiceAccounts []string // sorted, a copy
}

// EnclaveStatus describes the enclave name.
func (s *Service) EnclaveStatus(ctx context.Context, name string) (out EnclaveStatus, err error) {
	err = s.ReadEnclave(ctx, name, func(e *projections.Enclave) error {
		out = enclaveStatus(e)
		return nil
	})
	return out, err
}

func enclaveStatus(e *projections.Enclave) EnclaveStatus {
	return EnclaveStatus{Name: e.Name, CreatedAt: e.CreatedAt, CreatedBy: e.CreatedBy}
}

// KeyStatus describes a key version (0 = latest), whatever the key's
// state.
func (s *Service) KeyStatus(ctx context.Context, enclave, name string, version uint32) (KeyStatus, error) {
	_, v, err := s.Key(ctx, enclave, name, version)
	if err != nil {
		return KeyStatus{}, err
	}
	return KeyStatus{Name: name, Version: v.Version, Type: v.Type, CreatedAt: v.CreatedAt(), CreatedBy: v.CreatedBy}, nil
}

// Policy returns the policy name of the enclave.
func (s *Service) Policy(ctx context.Context, enclave, name string) (out Policy, err error) {
	err = s.ReadEnclave(ctx, enclave, func(e *projections.Enclave) error {
		p := e.Policies[name]
		if p == nil {
			return commands.ErrPolicyNotFound
		}
		out = Policy{Name: p.Name, Allow: p.Allow, Deny: p.Deny, CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy}
		return nil
	})
	return out, err
}

// Identity describes the identity id in the enclave; the root identity
// is described whatever the enclave.
func (s *Service) Identity(ctx context.Context, enclave, id string) (out Identity, err error) {
	err = s.Read(ctx, func(st *projections.State) error {
		if id == st.RootIdentity {
			out = Identity{Identity: id, Root: true}
			return nil
		}
		e, err := enclaveOf(st, enclave)
		if err != nil {
			return err
		}
		x := e.Identities[id]
		if x == nil {
			return commands.ErrIdentityNotFound
		}
		out = identity(e, x)
		return nil
	})
	return out, err
}

func identity(e *projections.Enclave, x *projections.Identity) Identity {
	priv := ledger.PrivilegeUser
	if x.Privilege == ledger.PrivilegeAdmin {
		priv = ledger.PrivilegeAdmin
	}
	return Identity{
		Identity: x.Identity, Privilege: priv, Policy: x.Policy, CreatedAt: x.CreatedAt, CreatedBy: x.CreatedBy,
		ServiceAccount: x.ServiceAccount, Tags: x.Tags, ServiceAccounts: slices.Clone(e.ServiceAccounts(x.Identity)),
	}
}

// KeyNames returns the sorted names of the enclave's keys that start with
// prefix, all of them; never nil.
func (s *Service) KeyNames(ctx context.Context, enclave, prefix string) (names []string, err error) {
	err = s.ReadEnclave(ctx, enclave, func(e *projections.Enclave) error {
		all := e.KeyNames()
		i, _ := slices.BinarySearch(all, prefix)
		j := i
		for j < len(all) && strings.HasPrefix(all[j], prefix) {
			j++
		}
		names = slices.Clone(all[i:j])
		return nil
	})
	if names == nil && err == nil {
		names = []string{}
	}
	return names, err
}

// sortedEnclaves is the names of every enclave, sorted.
func sortedEnclaves(st *projections.State) []string { return slices.Sorted(maps.Keys(st.Enclaves)) }
