package hsm

import (
	"testing"
	"unsafe"
)

// An unsealed key version is what the key cache holds for every version
// in use (BENCHMARKS.md, "Memory and the key cache"): one 128-byte
// allocation (the size class of 120 bytes), its counters on the second
// 64-byte line.
func TestKeySize(t *testing.T) {
	var k Key
	if got := unsafe.Sizeof(k); got > 128 {
		t.Errorf("unsafe.Sizeof(Key{}) = %d, want at most 128", got)
	}
	if got := unsafe.Offsetof(k.material); got != 64 {
		t.Errorf("offset of material = %d, want 64", got)
	}
}
