package keys

import (
	"context"
	"slices"
	"strings"

	"github.com/kmsledger/kmsledger/projections"
)

// Page sizes of the list reads: a Limit of 0, or above MaxPage, means
// DefaultPage.
const (
	DefaultPage = 1000
	MaxPage     = 1000
)

// Page asks for one page of a list: the names that start with Prefix, in
// order, from the first name >= ContinueAt, at most Limit of them.
type Page struct {
	Prefix, ContinueAt string
	Limit              int
}

// limit is the page size p asks for.
func (p Page) limit() int {
	if p.Limit <= 0 || p.Limit > MaxPage {
		return DefaultPage
	}
	return p.Limit
}

// ListEnclaves returns one page of the enclaves and the first name of the
// next page ("" at the end).
func (s *Service) ListEnclaves(ctx context.Context, p Page) (out []EnclaveStatus, next string, err error) {
	err = s.Read(ctx, func(st *projections.State) error {
		out, next = listEnclavesIn(st, p)
		return nil
	})
	return out, next, err
}

// listEnclavesIn is ListEnclaves on st (the caller holds the read lock).
func listEnclavesIn(st *projections.State, p Page) ([]EnclaveStatus, string) {
	names, next := page(sortedEnclaves(st), p)
	out := make([]EnclaveStatus, 0, len(names))
	for _, n := range names {
		out = append(out, enclaveStatus(st.Enclaves[n]))
	}
	return out, next
}

// ListKeys returns one page of the enclave's keys (each with its latest
// version) and the first name of the next page ("" at the end).
func (s *Service) ListKeys(ctx context.Context, enclave string, p Page) (out []KeyStatus, next string, err error) {
	err = s.ReadEnclave(ctx, enclave, func(e *projections.Enclave) error {
		out, next = listKeysIn(e, p)
		return nil
	})
	return out, next, err
}

// listKeysIn is ListKeys on e (the caller holds the read lock).
func listKeysIn(e *projections.Enclave, p Page) ([]KeyStatus, string) {
	names, next := page(e.KeyNames(), p)
	out := make([]KeyStatus, 0, len(names))
	for _, n := range names {
		v := e.Keys[n].Latest()
		out = append(out, KeyStatus{Name: n, Version: v.Version, Type: v.Type, CreatedAt: v.CreatedAt(), CreatedBy: v.CreatedBy})
	}
	return out, next
}

// ListPolicies returns one page of the enclave's policies (without their
// rules) and the first name of the next page ("" at the end).
func (s *Service) ListPolicies(ctx context.Context, enclave string, p Page) (out []Policy, next string, err error) {
	err = s.ReadEnclave(ctx, enclave, func(e *projections.Enclave) error {
		out, next = listPoliciesIn(e, p)
		return nil
	})
	return out, next, err
}

// listPoliciesIn is ListPolicies on e (the caller holds the read lock).
func listPoliciesIn(e *projections.Enclave, p Page) ([]Policy, string) {
	names, next := page(e.PolicyNames(), p)
	out := make([]Policy, 0, len(names))
	for _, n := range names {
		x := e.Policies[n]
		out = append(out, Policy{Name: n, CreatedAt: x.CreatedAt, CreatedBy: x.CreatedBy})
	}
	return out, next
}

// ListIdentities returns one page of the enclave's identities, each with
// its service accounts, and the first name of the next page ("" at the
// end).
func (s *Service) ListIdentities(ctx context.Context, enclave string, p Page) (out []Identity, next string, err error) {
	err = s.ReadEnclave(ctx, enclave, func(e *projections.Enclave) error {
		out, next = listIdentitiesIn(e, p)
		return nil
	})
	return out, next, err
}

// listIdentitiesIn is ListIdentities on e (the caller holds the read
// lock).
func listIdentitiesIn(e *projections.Enclave, p Page) ([]Identity, string) {
	names, next := page(e.IdentityNames(), p)
	out := make([]Identity, 0, len(names))
	for _, n := range names {
		out = append(out, identity(e, e.Identities[n]))
	}
	return out, next
}

// page returns the page p of the sorted names and the first name of the
// next page ("" at the end). It costs O(log n + page).
func page(names []string, p Page) (out []string, next string) {
	if p.ContinueAt != "" && !strings.HasPrefix(p.ContinueAt, p.Prefix) {
		return nil, ""
	}
	limit := p.limit()
	start := max(p.Prefix, p.ContinueAt)
	i, _ := slices.BinarySearch(names, start)
	j := i
	for ; j < len(names) && j-i < limit && strings.HasPrefix(names[j], p.Prefix); j++ {
	}
	if j < len(names) && j-i == limit && strings.HasPrefix(names[j], p.Prefix) {
		next = names[j]
	}
	return names[i:j], next
}
