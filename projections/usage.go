package projections

import "github.com/kmsledger/kmsledger/hsm"

// Usage returns how often this version encrypted and decrypted on this
// node since it was first used here after the node started (zero until
// then), never replicated or stored. Uses are counted by the unsealed
// key; those of an unsealed key dropped from the key cache while a
// request still used it may be missed.
func (v *Version) Usage() hsm.Usage {
	var u hsm.Usage
	if b := v.used.Load(); b != nil { // before the key: a key evicted meanwhile is missed, never counted twice
		u = *b
	}
	if k := v.key.Load(); k != nil {
		u = addUsage(u, k.Usage())
	}
	return u
}

// cached records that k is v's unsealed key in the cache. The cache's
// lock is held.
func (v *Version) cached(k *hsm.Key) { v.key.Store(k) }

// evicted folds the uses of v's cached key into v.used: the version no
// longer refers to the key, so the key's memory can be reclaimed. The
// cache's lock is held. A version evicted without a use since it was
// cached allocates nothing.
func (v *Version) evicted() {
	k := v.key.Swap(nil)
	if k == nil {
		return
	}
	u := k.Usage()
	if u == (hsm.Usage{}) {
		return
	}
	if b := v.used.Load(); b != nil {
		u = addUsage(*b, u)
	}
	v.used.Store(&u)
}

func addUsage(a, b hsm.Usage) hsm.Usage {
	return hsm.Usage{Encryptions: a.Encryptions + b.Encryptions, Decryptions: a.Decryptions + b.Decryptions,
		OldFormatDecryptions: a.OldFormatDecryptions + b.OldFormatDecryptions}
}
