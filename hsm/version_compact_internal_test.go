package hsm

import (
	"bytes"
	"errors"
	"testing"
)

// TestOpenCompactVersionMalformed: an authentic blob (sealed under the
// REK, in the version domain, under the right AD) whose compact content is
// not exactly a known type, the HMAC key its flag announces and 32 bytes of
// material is refused as a keyset error, not opened and not ErrUnseal.
func TestOpenCompactVersionMalformed(t *testing.T) {
	r := testREK(t)
	aad := VersionAAD("e", "k", 1)
	m32, m64 := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 64)
	ks, err := oneKeyKeyset(AES256, m32, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	cat := func(b byte, rest ...[]byte) []byte { return append([]byte{b}, bytes.Join(rest, nil)...) }
	good := map[string][]byte{
		"AES-256":                cat(0x41, m32),
		"ChaCha20":               cat(0x42, m32),
		"AES-256 with HMAC key":  cat(0xc1, m64),
		"ChaCha20 with HMAC key": cat(0xc2, m64),
	}
	for name, pt := range good {
		if _, err := r.OpenVersion(r.sealPT(t, pt, aad), aad, 1); err != nil {
			t.Errorf("OpenVersion(%s) err = %v, want nil", name, err)
		}
	}
	bad := map[string][]byte{
		"no material":                 cat(0x41),
		"31 bytes":                    cat(0x41, m32[:31]),
		"33 bytes":                    cat(0x41, m32, []byte{0}),
		"a keyset":                    cat(0x41, ks),
		"HMAC key, 31 bytes":          cat(0xc1, m64[:63]),
		"HMAC key, 65 bytes":          cat(0xc1, m64, []byte{0}),
		"HMAC key cut":                cat(0xc1, m32[:20]),
		"type 0":                      cat(0x40, m32),
		"type 3":                      cat(0x43, m32),
		"type 0x21":                   cat(0x61, m32),
		"keyset flag off, 32 bytes":   cat(0x01, m32),
		"compact flag, keyset of 142": cat(0x41, ks, m32),
	}
	for name, pt := range bad {
		_, err := r.OpenVersion(r.sealPT(t, pt, aad), aad, 1)
		if !errors.Is(err, errKeyset) {
			t.Errorf("OpenVersion(%s) err = %v, want errKeyset", name, err)
		}
	}
}

// sealPT seals pt as a key version's plaintext, authentically.
func (r *REK) sealPT(t *testing.T, pt, aad []byte) []byte {
	t.Helper()
	b, err := r.seal(domainVersion, pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzOpenVersionPlaintext seals any plaintext authentically as a key
// version and opens it: it never panics, and what opens is one of the
// layouts importVersion writes (a type, the HMAC key its flag announces,
// then exactly 32 bytes of material in the compact form).
func FuzzOpenVersionPlaintext(f *testing.F) {
	r := testREK(f)
	m := bytes.Repeat([]byte{3}, 32)
	ks, _ := oneKeyKeyset(ChaCha20, m, false, 0)
	for _, pt := range [][]byte{
		append([]byte{0x41}, m...), append([]byte{0xc2}, append(m, m...)...),
		append([]byte{0x02}, ks...), {0x41}, {}, append([]byte{0x42}, ks...),
	} {
		f.Add(pt)
	}
	aad := VersionAAD("e", "k", 1)
	f.Fuzz(func(t *testing.T, pt []byte) {
		sealed, err := r.seal(domainVersion, pt, aad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.OpenVersion(sealed, aad, 1); err != nil || pt[0]&flagRaw == 0 {
			return
		}
		want := 1 + materialLen
		if pt[0]&flagHMACKey != 0 {
			want += macKeyLen
		}
		if len(pt) != want || pt[0]&^(flagRaw|flagHMACKey) == 0 || pt[0]&^(flagRaw|flagHMACKey) > typeChaCha20 {
			t.Fatalf("opened a compact plaintext of %d bytes, type byte %#x", len(pt), pt[0])
		}
	})
}
