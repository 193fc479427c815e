package projections

import (
	"testing"
	"unsafe"
)

// A key of one version is one allocation of the 224-byte size class
// (keyCell); the key cache's pointer to the unsealed key fits in it
// (BENCHMARKS.md, "Memory and the key cache").
func TestKeyCellSize(t *testing.T) {
	if got := unsafe.Sizeof(keyCell{}); got > 224 {
		t.Errorf("unsafe.Sizeof(keyCell{}) = %d, want at most 224", got)
	}
}
