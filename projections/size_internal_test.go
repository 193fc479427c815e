package projections

import (
	"testing"
	"unsafe"
)

// A key of one version is one allocation of the 240-byte size class
// (keyCell): the key cache's pointer to the unsealed key and the
// version's fingerprint and secret reference, packed, fit in it
// (BENCHMARKS.md, "Memory and the key cache").
func TestKeyCellSize(t *testing.T) {
	if got := unsafe.Sizeof(keyCell{}); got > 240 {
		t.Errorf("unsafe.Sizeof(keyCell{}) = %d, want at most 240", got)
	}
}
