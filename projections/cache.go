package projections

import (
	"sync"
	"sync/atomic"

	"github.com/kmsledger/kmsledger/hsm"
)

// DefaultKeyCache is the number of unsealed key versions a Projection keeps
// when it is not told otherwise.
const DefaultKeyCache = 100_000

// keyCache keeps at most len(slots) unsealed key versions, evicting with
// CLOCK (second chance): a hit only sets the slot's reference bit; a miss
// unseals the version from its sealed material and takes the first slot
// the hand finds without the bit, clearing bits as it passes. A version
// knows its slot (Version.slot), so a hit is two atomic loads and no lock,
// and the cache costs no map. A slot's entry is immutable; a slot holds
// the version it was filled for, checked on every hit.
//
// Only versions that may be used are kept: the state drops a version from
// the cache as it is destroyed, disabled or scheduled for deletion (under
// the Projection's write lock), and an unsealed version is put in the
// cache only if admit finds it still live and usable (under the read
// lock), so that an unsealing racing with such an event does not keep it.
type keyCache struct {
	slots []atomic.Pointer[cacheEntry]

	mu       sync.Mutex // guards hand, inflight and the filling of slots
	hand     int
	inflight map[*Version]*unsealCall

	size                    atomic.Int64
	hits, misses, evictions atomic.Uint64
}

type cacheEntry struct {
	v   *Version
	key *hsm.Key
	ref atomic.Bool // used since the hand last passed
}

// unsealCall is one unsealing in progress; callers that miss on the same
// version meanwhile wait for it instead of unsealing again.
type unsealCall struct {
	done chan struct{}
	key  *hsm.Key
	err  error
}

// CacheStats are the key cache's counters since start.
type CacheStats struct {
	Capacity, Size          int
	Hits, Misses, Evictions uint64
}

func newKeyCache(size int) *keyCache {
	if size <= 0 {
		size = DefaultKeyCache
	}
	return &keyCache{slots: make([]atomic.Pointer[cacheEntry], size), inflight: map[*Version]*unsealCall{}}
}

// lookup returns v's unsealed key if the cache holds it.
func (c *keyCache) lookup(v *Version) *hsm.Key {
	i := v.slot.Load()
	if i == 0 {
		return nil
	}
	e := c.slots[i-1].Load()
	if e == nil || e.v != v {
		return nil
	}
	if !e.ref.Load() {
		e.ref.Store(true)
	}
	return e.key
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
	if c.lookup(v) != nil {
		return
	}
	for {
		i := c.hand
		c.hand = (c.hand + 1) % len(c.slots)
		e := c.slots[i].Load()
		if e != nil && e.ref.Load() {
			e.ref.Store(false)
			continue
		}
		if e != nil {
			e.v.evicted()
			c.evictions.Add(1)
		} else {
			c.size.Add(1)
		}
		c.slots[i].Store(&cacheEntry{v: v, key: k})
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
	i := v.slot.Swap(0)
	if i == 0 {
		return
	}
	if e := c.slots[i-1].Load(); e != nil && e.v == v {
		c.slots[i-1].Store(nil)
		c.size.Add(-1)
		v.evicted()
	}
}

func (c *keyCache) stats() CacheStats {
	return CacheStats{Capacity: len(c.slots), Size: int(c.size.Load()),
		Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load()}
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
