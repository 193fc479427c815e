// A small table of expanded format-0x02 keys, shared by the versions one
// REK unsealed.
//
// Summary: an unsealed key version keeps K2 as 32 bytes (key.go), not
// as an expanded AES-256 key (480 bytes), so that a million of them fit
// in the key cache. XAES-256-GCM needs AES-256 under K2 for every message
// (format02.go); expanding it per message costs a key schedule and an
// allocation. The REK keeps the expansions of the versions used last in
// a direct-mapped table of k2BlockSlots entries, indexed by a hash of the
// Key's address (never of its secret bytes, which would leak them through
// cache timing): a key in constant use finds its expansion there, a key
// used at random among many expands K2 again, as if the table were not
// there. The table holds at most k2BlockSlots expansions (about 2 MB).
// Key.Forget clears a version's entry at once when the version may no
// longer be used; an evicted version's entry stays until another version
// takes the slot.

package hsm

import (
	"crypto/aes"
	"crypto/cipher"
	"hash/maphash"
	"sync/atomic"
)

// k2BlockSlots is the size of the table: enough for the keys in constant
// use, small against a key cache of a million versions.
const k2BlockSlots = 4096

// k2Blocks is the table of one REK. It is safe for concurrent use.
type k2Blocks struct {
	seed  maphash.Seed
	slots [k2BlockSlots]atomic.Pointer[k2Block]
}

// k2Block is AES-256 under a Key's K2 with its CMAC subkey K1; it is
// immutable.
type k2Block struct {
	owner *Key
	b     cipher.Block
	k1    [16]byte
}

func newK2Blocks() *k2Blocks { return &k2Blocks{seed: maphash.MakeSeed()} }

// xaesKey returns AES-256 under k's K2 and its CMAC subkey, from the
// table if it holds them.
func (k *Key) xaesKey() *k2Block {
	t := k.blocks
	if t == nil {
		return expandK2(k)
	}
	slot := &t.slots[maphash.Comparable(t.seed, k)%k2BlockSlots]
	if e := slot.Load(); e != nil && e.owner == k {
		return e
	}
	e := expandK2(k)
	slot.Store(e)
	return e
}

// Forget drops the expansion of the version's format-0x02 key from the
// table of the REK that unsealed it, if it is there. Call it when the
// version may no longer be used (destroyed, disabled); the Key itself
// stays usable.
func (k *Key) Forget() {
	if t := k.blocks; t != nil {
		slot := &t.slots[maphash.Comparable(t.seed, k)%k2BlockSlots]
		if e := slot.Load(); e != nil && e.owner == k {
			slot.CompareAndSwap(e, nil)
		}
	}
}

// expandK2 makes AES-256 under k.k2 and the CMAC subkey K1 = L·x, with
// L = AES-256_K2(0^128) (c2sp.org/XAES-256-GCM).
func expandK2(k *Key) *k2Block {
	b, err := aes.NewCipher(k.k2[:]) // expands K2: the bytes are not kept
	if err != nil {
		panic("hsm: XAES-256-GCM: " + err.Error()) // a 32-byte key cannot fail
	}
	e := &k2Block{owner: k, b: b}
	var l [16]byte
	b.Encrypt(l[:], l[:])
	for i := range 15 {
		e.k1[i] = l[i]<<1 | l[i+1]>>7
	}
	e.k1[15] = l[15] << 1
	if l[0]&0x80 != 0 {
		e.k1[15] ^= 0x87
	}
	clear(l[:])
	return e
}
