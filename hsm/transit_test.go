package hsm_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/kmsledger/kmsledger/hsm"
)

func TestTransitRoundTrip(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	ctx1, ctx2 := []byte("context one"), []byte("context two")
	for _, kt := range keyTypes {
		k := generateKey(t, rek, kt, 3)
		other := generateKey(t, rek, kt, 3)
		pt := []byte("a 32-byte data key of SeaweedFS.")
		ad := []byte("associated")

		// Not derived: the context is ignored, the AD is not.
		ct, err := k.TransitEncrypt(pt, ctx1, ad, false)
		if err != nil {
			t.Fatalf("%s: TransitEncrypt err = %v", kt, err)
		}
		if want := 12 + len(pt) + 16; len(ct) != want {
			t.Errorf("%s: len = %d, want %d", kt, len(ct), want)
		}
		for _, c := range [][]byte{nil, ctx1, ctx2} {
			if got, err := k.TransitDecrypt(ct, c, ad, false); err != nil || !bytes.Equal(got, pt) {
				t.Errorf("%s: TransitDecrypt(context %q) = %q, %v, want the plaintext", kt, c, got, err)
			}
		}
		if _, err := k.TransitDecrypt(ct, nil, nil, false); !errors.Is(err, hsm.ErrDecrypt) {
			t.Errorf("%s: TransitDecrypt without AD err = %v, want ErrDecrypt", kt, err)
		}
		if _, err := other.TransitDecrypt(ct, nil, ad, false); !errors.Is(err, hsm.ErrDecrypt) {
			t.Errorf("%s: TransitDecrypt with another key err = %v, want ErrDecrypt", kt, err)
		}
		// The kms API's format and the Transit layout never open each other.
		if _, err := k.Decrypt(ct, ad); err == nil {
			t.Errorf("%s: a Transit ciphertext opened as a kms ciphertext", kt)
		}
		for i := range ct {
			bad := bytes.Clone(ct)
			bad[i] ^= 0x01
			if _, err := k.TransitDecrypt(bad, nil, ad, false); !errors.Is(err, hsm.ErrDecrypt) {
				t.Fatalf("%s: bit %d flipped: err = %v, want ErrDecrypt", kt, i, err)
			}
		}
		if _, err := k.TransitDecrypt(ct[:27], nil, ad, false); !errors.Is(err, hsm.ErrTransitLength) {
			t.Errorf("%s: 27 bytes: err = %v, want ErrTransitLength", kt, err)
		}

		// Derived: the context is the key.
		dct, err := k.TransitEncrypt(pt, ctx1, nil, true)
		if err != nil {
			t.Fatalf("%s: derived TransitEncrypt err = %v", kt, err)
		}
		if got, err := k.TransitDecrypt(dct, ctx1, nil, true); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%s: derived TransitDecrypt = %q, %v, want the plaintext", kt, got, err)
		}
		if _, err := k.TransitDecrypt(dct, ctx2, nil, true); !errors.Is(err, hsm.ErrDecrypt) {
			t.Errorf("%s: derived, other context: err = %v, want ErrDecrypt", kt, err)
		}
		if _, err := k.TransitDecrypt(dct, nil, nil, false); !errors.Is(err, hsm.ErrDecrypt) {
			t.Errorf("%s: derived ciphertext opened as not derived: err = %v, want ErrDecrypt", kt, err)
		}
		if _, err := k.TransitEncrypt(pt, nil, nil, true); !errors.Is(err, hsm.ErrTransitContext) {
			t.Errorf("%s: derived without context: err = %v, want ErrTransitContext", kt, err)
		}
	}
}

func TestTransitHMAC(t *testing.T) {
	t.Parallel()
	k := generateKey(t, newREK(t), hsm.AES256, 1)
	msg := []byte("input")
	m, err := k.TransitHMAC("sha2-256", msg)
	if err != nil || !bytes.Equal(m, k.MAC(msg)) {
		t.Errorf("TransitHMAC(sha2-256) = %x, %v, want the kms API's MAC %x", m, err, k.MAC(msg))
	}
	for alg, n := range map[string]int{"sha2-224": 28, "sha2-384": 48, "sha2-512": 64, "sha3-224": 28, "sha3-256": 32, "sha3-384": 48, "sha3-512": 64} {
		if m, err := k.TransitHMAC(alg, msg); err != nil || len(m) != n {
			t.Errorf("TransitHMAC(%s) = %d bytes, %v, want %d", alg, len(m), err, n)
		}
	}
	if _, err := k.TransitHMAC("md5", msg); !errors.Is(err, hsm.ErrTransitHash) {
		t.Errorf("TransitHMAC(md5) err = %v, want ErrTransitHash", err)
	}
}
