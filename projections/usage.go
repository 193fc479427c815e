package projections

import "github.com/kmsledger/kmsledger/hsm"

// versionUse counts what a version did on this node: base sums the
// unsealed keys that left the key cache, cur is the one in it (nil if
// none). It is replaced, never changed, under the cache's lock.
type versionUse struct {
	base hsm.Usage
	cur  *hsm.Key
}

// Usage returns how often this version encrypted and decrypted on this
// node since it was first used here after the node started (zero until
// then), never replicated or stored. Uses are counted by the unsealed
// key; those of an unsealed key dropped from the key cache while a
// request still used it may be missed.
func (v *Version) Usage() hsm.Usage {
	u := v.use.Load()
	if u == nil {
		return hsm.Usage{}
	}
	if u.cur == nil {
		return u.base
	}
	return addUsage(u.base, u.cur.Usage())
}

// cached records that k is v's unsealed key in the cache.
func (v *Version) cached(k *hsm.Key) {
	var base hsm.Usage
	if u := v.use.Load(); u != nil {
		base = u.base
	}
	v.use.Store(&versionUse{base: base, cur: k})
}

// evicted folds the uses of v's cached key into its base: the version no
// longer refers to the key, so the key's memory can be reclaimed.
func (v *Version) evicted() {
	if u := v.use.Load(); u != nil && u.cur != nil {
		v.use.Store(&versionUse{base: addUsage(u.base, u.cur.Usage())})
	}
}

func addUsage(a, b hsm.Usage) hsm.Usage {
	return hsm.Usage{Encryptions: a.Encryptions + b.Encryptions, Decryptions: a.Decryptions + b.Decryptions,
		OldFormatDecryptions: a.OldFormatDecryptions + b.OldFormatDecryptions}
}
