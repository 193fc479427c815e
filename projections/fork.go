package projections

import "maps"

// Fork returns a scratch copy of s on which a batch of commands is
// decided: each command against the state the earlier ones leave. Apply
// on the fork never changes s: the fork copies an enclave the first time
// an event touches it (so a fork costs the size of the enclaves a batch
// writes to, not of the whole state). Events applied to a fork have no
// sequence (Seq 0), so its subjects' sequences stay those of s (but for
// the keys of an enclave it deletes, kept in its own map). The fork shares
// unchanged parts with s: read it while holding s's read lock, and drop
// it before releasing the lock.
func (s *State) Fork() *State {
	f := *s
	f.Enclaves = maps.Clone(s.Enclaves)
	f.HSMs = maps.Clone(s.HSMs)
	f.owned, f.subjectsShared = map[string]bool{}, true
	f.actors, f.dropped = nil, nil // the fork's events are decided, not applied: nothing to intern or forget
	return &f
}

// own makes enclave name of a fork its own copy before an event changes
// it; a no-op on a state that is not a fork.
func (s *State) own(name string) {
	if s.owned == nil || s.owned[name] {
		return
	}
	s.owned[name] = true
	if e := s.Enclaves[name]; e != nil {
		s.Enclaves[name] = e.clone()
	}
}

// clone copies e deep enough that applying events to the copy leaves e
// alone: maps, keys, versions and identities are copied; policies and
// tombstones are replaced, never changed, so they are shared.
func (e *Enclave) clone() *Enclave {
	c := Enclave{Name: e.Name, CreatedAt: e.CreatedAt, CreatedBy: e.CreatedBy}
	c.Keys = make(map[string]*Key, len(e.Keys))
	for n, k := range e.Keys {
		kc := *k
		kc.versions = make([]*Version, len(k.versions))
		for i, x := range k.versions {
			kc.versions[i] = copyVersion(x)
		}
		c.Keys[n] = &kc
	}
	c.Identities = make(map[string]*Identity, len(e.Identities))
	for n, x := range e.Identities {
		xc := *x
		c.Identities[n] = &xc
	}
	c.Policies = maps.Clone(e.Policies)
	c.Tombstones = maps.Clone(e.Tombstones)
	c.pending = maps.Clone(e.pending)
	c.AppRoles = maps.Clone(e.AppRoles)
	c.Tokens = maps.Clone(e.Tokens)
	return &c
}
