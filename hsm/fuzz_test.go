package hsm_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/kmsledger/kmsledger/hsm"
)

// FuzzDecrypt checks that Decrypt never panics on arbitrary input and fails
// only with ErrDecrypt. It may succeed only on a genuine ciphertext of
// "fuzz" with the seeds' ad: the material is fixed, but nonces are random
// and each fuzz worker runs this setup afresh, so the seeds' exact bytes are
// not known here; any other success would be a forgery.
func FuzzDecrypt(f *testing.F) {
	rek := newREK(f)
	keys := []*hsm.Key{
		importKey(f, rek, hsm.AES256, material0to31(), "e", "k", 1),
		importKey(f, rek, hsm.ChaCha20, material0to31(), "e", "k", 1),
	}
	ad := []byte("{}")
	for _, k := range keys {
		ct, err := k.Encrypt([]byte("fuzz"), ad)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ct, ad)
		f.Add(ct[:len(ct)-1], ad)
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte{'K', 0x01, 0, 0, 0, 1}, ad)
	f.Add(bytes.Repeat([]byte{0}, 44), ad)
	f.Add(append([]byte{'K', 0x01, 0, 0, 0, 1}, make([]byte, 40)...), []byte(nil))
	f.Add(append([]byte{'K', 0x02, 0, 0, 0, 1}, make([]byte, 40)...), []byte(nil))
	f.Fuzz(func(t *testing.T, ct, ad2 []byte) {
		for _, k := range keys {
			pt, err := k.Decrypt(ct, ad2)
			if err == nil {
				if !bytes.Equal(ad2, ad) || string(pt) != "fuzz" {
					t.Fatalf("Decrypt(%x, %x) = %q, nil: accepted a forged ciphertext", ct, ad2, pt)
				}
				continue
			}
			if !errors.Is(err, hsm.ErrDecrypt) || pt != nil {
				t.Fatalf("Decrypt(%x) = %x, %v, want nil, ErrDecrypt", ct, pt, err)
			}
		}
	})
}
