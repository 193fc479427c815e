package hsm_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/kmsledger/kmsledger/hsm"
)

// TestCompactVersions: a REK from CompactVersions seals a version in 66
// bytes (98 with a KES HMAC key) instead of the keyset form's 138–142 for
// AES-256 and 148–152 for ChaCha20 (32 more with an HMAC key).
// Either REK opens either form, and the two forms of the same material
// give the same key: each decrypts the other's ciphertexts, and the HMAC
// keys agree. The compact form is bound to its place as the keyset form
// is.
func TestCompactVersions(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	compact := rek.CompactVersions()
	raw, mac := material0to31(), bytes.Repeat([]byte{0xa5}, 32)
	for _, kt := range []hsm.KeyType{hsm.AES256, hsm.ChaCha20} {
		t.Run(string(kt), func(t *testing.T) {
			aad := hsm.VersionAAD("e", "k", 2)
			for _, c := range []struct {
				hmacKey []byte
				packed  int
			}{{nil, 66}, {mac, 98}} {
				long, fp1, err := rek.ImportVersionKES(kt, raw, c.hmacKey, aad)
				if err != nil {
					t.Fatal(err)
				}
				short, fp2, err := compact.ImportVersionKES(kt, raw, c.hmacKey, aad)
				if err != nil {
					t.Fatal(err)
				}
				// The keyset's key id is a random varint: 138 to 142 bytes
				// for AES-256, 148 to 152 for ChaCha20.
				if len(long) < c.packed+70 || len(short) != c.packed {
					t.Fatalf("sealed sizes (HMAC key %v) = %d keyset, %d compact, want over %d, %d", c.hmacKey != nil, len(long), len(short), c.packed+70, c.packed)
				}
				if fp1 != fp2 {
					t.Errorf("fingerprints %s (keyset), %s (compact), want equal", fp1, fp2)
				}
				var keys []*hsm.Key
				for _, opener := range []*hsm.REK{rek, compact} {
					for _, sealed := range [][]byte{long, short} {
						k, err := opener.OpenVersion(sealed, aad, 2)
						if err != nil {
							t.Fatalf("OpenVersion(%d bytes) err = %v, want nil", len(sealed), err)
						}
						keys = append(keys, k)
					}
				}
				assertSameKey(t, keys)
				if _, err := rek.OpenVersion(short, hsm.VersionAAD("e", "k", 3), 3); !errors.Is(err, hsm.ErrUnseal) {
					t.Errorf("OpenVersion(compact, another version's AD) err = %v, want ErrUnseal", err)
				}
				if _, err := newREK(t).OpenVersion(short, aad, 2); !errors.Is(err, hsm.ErrUnseal) {
					t.Errorf("OpenVersion(compact, another REK) err = %v, want ErrUnseal", err)
				}
			}
		})
	}
	sealed, _, err := compact.GenerateVersion(hsm.AES256, hsm.VersionAAD("e", "k", 1))
	if err != nil || len(sealed) != 66 {
		t.Fatalf("compact GenerateVersion = %d bytes, %v, want 66, nil", len(sealed), err)
	}
	if s, _, _ := rek.GenerateVersion(hsm.AES256, hsm.VersionAAD("e", "k", 1)); len(s) < 138 {
		t.Errorf("GenerateVersion after CompactVersions = %d bytes, want 138 or more (the original REK unchanged)", len(s))
	}
}

// assertSameKey checks that every key decrypts every other's ciphertext
// and that their HMACs agree.
func assertSameKey(t *testing.T, keys []*hsm.Key) {
	t.Helper()
	for i, a := range keys {
		ct, err := a.Encrypt([]byte("payload"), []byte("ad"))
		if err != nil {
			t.Fatal(err)
		}
		macA := a.MAC([]byte("m"))
		for j, b := range keys {
			if pt, err := b.Decrypt(ct, []byte("ad")); err != nil || string(pt) != "payload" {
				t.Errorf("key %d Decrypt(key %d's ciphertext) = %q, %v, want payload, nil", j, i, pt, err)
			}
			if macB := b.MAC([]byte("m")); !bytes.Equal(macA, macB) {
				t.Errorf("MAC of key %d = %x, of key %d = %x, want equal", i, macA, j, macB)
			}
		}
	}
}
