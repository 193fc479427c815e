package projections

import "github.com/kmsledger/kmsledger/hsm"

// Usage returns how often this version encrypted and decrypted on this
// node: counted in memory by its unsealed hsm.Key since it was first used
// here after the node started (zero until then), never replicated or
// stored.
func (v *Version) Usage() hsm.Usage {
	if k := v.unsealed.key.Load(); k != nil {
		return k.Usage()
	}
	return hsm.Usage{}
}
