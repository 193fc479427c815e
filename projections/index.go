package projections

import (
	"maps"
	"slices"
	"sync/atomic"
)

// nameIndex caches the sorted names of one map of an Enclave, for list
// pages in O(log n + page). It is built on first use by a reader (under
// the Projection's read lock; racing readers build equal slices and one
// wins) and dropped by every event applied to the enclave (under the
// write lock). The cached slice is never changed.
type nameIndex struct{ p atomic.Pointer[[]string] }

func (x *nameIndex) reset() { x.p.Store(nil) }

func sortedNames[V any](x *nameIndex, m map[string]V) []string {
	if p := x.p.Load(); p != nil {
		return *p
	}
	names := slices.Sorted(maps.Keys(m))
	x.p.CompareAndSwap(nil, &names)
	return names
}

// KeyNames returns the names of e's keys, sorted. The slice is shared:
// do not change it.
func (e *Enclave) KeyNames() []string { return sortedNames(&e.keyIndex, e.Keys) }

// IdentityNames returns e's identities, sorted. The slice is shared: do
// not change it.
func (e *Enclave) IdentityNames() []string { return sortedNames(&e.identityIndex, e.Identities) }

// PolicyNames returns the names of e's policies, sorted. The slice is
// shared: do not change it.
func (e *Enclave) PolicyNames() []string { return sortedNames(&e.policyIndex, e.Policies) }

// ServiceAccounts returns the service accounts of parent in e, sorted,
// from an index built once per change of e. The slice is shared: do not
// change it.
func (e *Enclave) ServiceAccounts(parent string) []string {
	idx := e.saIndex.Load()
	if idx == nil {
		m := map[string][]string{}
		for _, x := range e.Identities {
			if x.ServiceAccount {
				m[x.Parent] = append(m[x.Parent], x.Identity)
			}
		}
		for _, sas := range m {
			slices.Sort(sas)
		}
		e.saIndex.CompareAndSwap(nil, &m)
		idx = &m
	}
	return (*idx)[parent]
}

// resetIndexes drops the cached names after a change to e.
func (e *Enclave) resetIndexes() {
	e.keyIndex.reset()
	e.identityIndex.reset()
	e.policyIndex.reset()
	e.saIndex.Store(nil)
}
