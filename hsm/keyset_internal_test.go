package hsm

import (
	"bytes"
	"crypto/rand"
	"testing"
)

// rawKeysetMaterial must read the keysets importVersion seals, of both
// types, and give the material Tink's parse gives.
func TestRawKeysetMaterial(t *testing.T) {
	for _, kt := range []KeyType{AES256, ChaCha20} {
		for range 20 {
			material := make([]byte, materialLen)
			rand.Read(material)
			ks := rawKeyset(t, kt, material)
			got, ok := rawKeysetMaterial(ks, kt)
			if !ok || !bytes.Equal(got, material) {
				t.Fatalf("rawKeysetMaterial(%s keyset) = %x, %v, want the material, true", kt, got, ok)
			}
			other := AES256
			if kt == AES256 {
				other = ChaCha20
			}
			if _, ok := rawKeysetMaterial(ks, other); ok {
				t.Errorf("rawKeysetMaterial(%s keyset, %s) ok, want not ok", kt, other)
			}
			// Every strict prefix and every single-byte change is
			// refused, or read exactly as Tink reads it.
			for i := range ks {
				if _, ok := rawKeysetMaterial(ks[:i], kt); ok {
					t.Fatalf("rawKeysetMaterial(%s keyset[:%d]) ok, want not ok", kt, i)
				}
				b := bytes.Clone(ks)
				b[i] ^= 0x01
				checkAgainstTink(t, b, kt)
			}
		}
	}
}

// FuzzRawKeysetMaterial: whatever rawKeysetMaterial accepts, Tink parses
// to the same material and type.
func FuzzRawKeysetMaterial(f *testing.F) {
	for _, kt := range []KeyType{AES256, ChaCha20} {
		f.Add(rawKeyset(f, kt, bytes.Repeat([]byte{7}, materialLen)), kt == ChaCha20)
	}
	f.Fuzz(func(t *testing.T, b []byte, chacha bool) {
		kt := AES256
		if chacha {
			kt = ChaCha20
		}
		checkAgainstTink(t, b, kt)
	})
}

func checkAgainstTink(t *testing.T, b []byte, kt KeyType) {
	t.Helper()
	got, ok := rawKeysetMaterial(b, kt)
	if !ok {
		return
	}
	_, want, err := parseKeyset(b, kt, false)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("rawKeysetMaterial(%x) = %x, true; Tink: %x, %v", b, got, want, err)
	}
}

// rawKeyset is the cleartext keyset importVersion seals for material.
func rawKeyset(t testing.TB, kt KeyType, material []byte) []byte {
	t.Helper()
	ks, err := oneKeyKeyset(kt, material, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// testREK is a REK made from a fresh cleartext keyset, without an HSM.
func testREK(t testing.TB) *REK {
	t.Helper()
	material := make([]byte, materialLen)
	rand.Read(material)
	ks, err := oneKeyKeyset(AES256, material, true, 0x01020304)
	if err != nil {
		t.Fatal(err)
	}
	r, err := openREKKeyset(ks)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
