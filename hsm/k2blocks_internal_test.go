package hsm

import (
	"testing"
)

// A version in use finds its expanded K2 in the REK's table; Forget
// removes it, and the version keeps working without it.
func TestK2Blocks(t *testing.T) {
	rek := testREK(t)
	aad := VersionAAD("e", "k", 1)
	sealed, _, err := rek.GenerateVersion(AES256, aad)
	if err != nil {
		t.Fatal(err)
	}
	k, err := rek.OpenVersion(sealed, aad, 1)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := k.Encrypt([]byte("data"), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := k.xaesKey()
	if e.owner != k || k.xaesKey() != e {
		t.Fatalf("xaesKey() after a use = %p, not the table's entry for the key", e)
	}
	k.Forget()
	if k.xaesKey() == e {
		t.Errorf("xaesKey() after Forget = the forgotten entry")
	}
	k.Forget()
	if pt, err := k.Decrypt(ct, nil); err != nil || string(pt) != "data" {
		t.Errorf("Decrypt after Forget = %q, %v, want data", pt, err)
	}
	// A second Key of the same version has its own entry.
	k2, err := rek.OpenVersion(sealed, aad, 1)
	if err != nil {
		t.Fatal(err)
	}
	if k2.xaesKey().owner != k2 {
		t.Errorf("xaesKey() of a second Key of the same version is not its own")
	}
}
