package projections

import (
	"sync"
	"sync/atomic"

	"github.com/kmsledger/kmsledger/hsm"
)

// DefaultKeyCache is the number of unsealed key versions a Projection keeps
// when it is not told otherwise.
const DefaultKeyCache = 1_000_000

// keyCache keeps at most max unsealed key versions, evicting with
// CLOCK (second chance): a hit only sets the version's reference bit; a
// miss unseals the version from its sealed material and takes the first
// slot the hand finds without the bit, clearing bits as it passes. The
// unsealed key hangs off the Version itself (Version.key) and a Version
// knows its slot (Version.slot), so a hit is two atomic loads from the
// Version and no lock, and the cache costs no map: per cached version, the
// unsealed key (hsm.Key, one 128-byte allocation) and one 8-byte slot.
//
// Only versions that may be used are kept: the state drops a version from
// the cache as it is destroyed, disabled or scheduled for deletion (under
// the Projection's write lock), and an unsealed version is put in the
// cache only if admit finds it still live and usable (under the read
// lock), so that an unsealing racing with such an event does not keep it.
type keyCache struct {
	mu       sync.Mutex // guards slots, hand, inflight, and the filling and emptying of slots
	slots    []*Version // grows up to max as versions are cached, so an empty slot costs nothing
	max      int
	hand     int
	inflight map[*Version]*unsealCall

	size                            atomic.Int64
	hits, misses, evictions, primes atomic.Uint64
}

// refBit is the reference bit in Version.slot, above the slot index + 1.
const refBit = 1 << 31

// maxKeyCache is the largest key cache: slot indexes + 1 stay below refBit.
const maxKeyCache = refBit - 1

// unsealCall is one unsealing in progress; callers that miss on the same
// version meanwhile wait for it instead of unsealing again.
type unsealCall struct {
	done chan struct{}
	key  *hsm.Key
	err  error
}

// CacheStats are the key cache's counters since start. Primes counts the
// versions put in the cache without a use (Prime): as a command stores
// their material, or by the warm-up at start.
type CacheStats struct {
	Capacity, Size                  int
	Hits, Misses, Evictions, Primes uint64
}

func newKeyCache(size int) *keyCache {
	if size <= 0 {
		size = DefaultKeyCache
	}
	size = min(size, maxKeyCache)
	return &keyCache{max: size, inflight: map[*Version]*unsealCall{}}
}

// lookup returns v's unsealed key if the cache holds it.
func (c *keyCache) lookup(v *Version) *hsm.Key {
	k := v.key.Load()
	if k == nil {
		return nil
	}
	if v.slot.Load()&refBit == 0 {
		v.slot.Or(refBit)
	}
	return k
}

// get returns v's unsealed key, from the cache or from open (at most one
// open per version at a time). A failed open is not cached, so a transient
// store error does not stick. The key opened is cached only if admit calls
// the function it is given (admit checks, under the Projection's read
// lock, that v may still be cached).
func (c *keyCache) get(v *Version, open func() (*hsm.Key, error), admit func(put func())) (*hsm.Key, error) {
	if k := c.lookup(v); k != nil {
		c.hits.Add(1)
		return k, nil
	}
	c.mu.Lock()
	if k := c.lookup(v); k != nil { // filled while we waited for the lock
		c.mu.Unlock()
		c.hits.Add(1)
		return k, nil
	}
	if call := c.inflight[v]; call != nil {
		c.mu.Unlock()
		<-call.done
		c.hits.Add(1)
		return call.key, call.err
	}
	call := &unsealCall{done: make(chan struct{})}
	c.inflight[v] = call
	c.mu.Unlock()
	c.misses.Add(1)

	call.key, call.err = open()
	if call.err == nil {
		admit(func() {
			c.mu.Lock()
			c.put(v, call.key)
			c.mu.Unlock()
		})
	}
	c.mu.Lock()
	delete(c.inflight, v)
	c.mu.Unlock()
	close(call.done)
	return call.key, call.err
}

// put stores k for v in the slot the hand finds. c.mu is held.
func (c *keyCache) put(v *Version, k *hsm.Key) {
	if v.key.Load() != nil {
		return
	}
	if len(c.slots) < c.max {
		c.slots = append(c.slots, v)
		c.size.Add(1)
		v.slot.Store(uint32(len(c.slots)))
		v.cached(k)
		return
	}
	for {
		i := c.hand
		c.hand = (c.hand + 1) % len(c.slots)
		old := c.slots[i]
		if old != nil && old.slot.Load()&refBit != 0 {
			old.slot.And(^uint32(refBit))
			continue
		}
		if old != nil {
			old.slot.Store(0)
			old.evicted()
			c.evictions.Add(1)
		} else {
			c.size.Add(1)
		}
		c.slots[i] = v
		v.slot.Store(uint32(i) + 1)
		v.cached(k)
		return
	}
}

// drop forgets v's unsealed key now: v was destroyed (or its enclave
// deleted), disabled or scheduled for deletion. The state's write lock
// is held, so no admit runs meanwhile.
func (c *keyCache) drop(v *Version) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := v.slot.Swap(0) &^ refBit
	if i == 0 {
		return
	}
	if k := v.key.Load(); k != nil {
		k.Forget() // its expanded key too (hsm/k2blocks.go)
	}
	if c.slots[i-1] == v {
		c.slots[i-1] = nil
		c.size.Add(-1)
		v.evicted()
	}
}

func (c *keyCache) stats() CacheStats {
	return CacheStats{Capacity: c.max, Size: int(c.size.Load()),
		Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(), Primes: c.primes.Load()}
}

// cacheable reports whether version v of enclave/name is still live and
// usable, so that its unsealed material may be kept. The caller holds the
// Projection's read lock.
func (s *State) cacheable(enclave, name string, v *Version) bool {
	e := s.Enclaves[enclave]
	if e == nil {
		return false
	}
	k := e.Keys[name]
	return k != nil && k.Version(v.Version) == v && k.Usable(v) == nil
}

// Prime puts version of enclave/name into the key cache, unsealed from
// sealed, the material stored for it under ref: a command that has just
// stored it, so that the first use of a new key is not a miss (a read of
// SECRETS, which loads the whole block that holds it), or the warm-up at
// start. It is a no-op if the version is not in the state, is stored
// under another reference, may not be used, or is cached already; or if
// the material does not open for it (the version's associated data binds
// it). It reports whether it cached the version. Primes count as neither
// hits nor misses.
func (p *Projection) Prime(enclave, name string, version uint32, ref string, sealed []byte) bool {
	var v *Version
	p.View(func(s *State) {
		if e := s.Enclaves[enclave]; e != nil {
			if k := e.Keys[name]; k != nil {
				if x := k.Version(version); x != nil && x.SecretRef(e.Name, k.Name) == ref {
					v = x
				}
			}
		}
	})
	if v == nil || p.cache.lookup(v) != nil {
		return false
	}
	key, err := p.unseal(enclave, name, v, sealed)
	if err != nil {
		return false
	}
	primed := false
	p.admit(enclave, name, v, func() {
		p.cache.mu.Lock()
		if primed = v.key.Load() == nil; primed {
			p.cache.primes.Add(1)
		}
		p.cache.put(v, key)
		p.cache.mu.Unlock()
	})
	return primed
}

// unseal opens sealed as version v of enclave/name (its associated data
// binds the material to them).
func (p *Projection) unseal(enclave, name string, v *Version, sealed []byte) (*hsm.Key, error) {
	rek := p.rek.Load()
	if rek == nil {
		return nil, ErrSealed
	}
	return rek.OpenVersion(sealed, hsm.VersionAAD(enclave, name, v.Version), v.Version)
}

// admit calls put, under the read lock, if version v of enclave/name may
// still be cached (State.cacheable): an unsealing that raced with its
// destruction, disabling or scheduled deletion does not keep it.
func (p *Projection) admit(enclave, name string, v *Version, put func()) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.st.cacheable(enclave, name, v) {
		put()
	}
}
