package hsm_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/hsm/softkey"
)

func newSoftkey(t testing.TB) *softkey.Key {
	t.Helper()
	s, err := softkey.Generate(rand.Reader)
	if err != nil {
		t.Fatalf("softkey.Generate err = %v", err)
	}
	k, err := softkey.Parse(s)
	if err != nil {
		t.Fatalf("softkey.Parse err = %v", err)
	}
	return k
}

func newREK(t testing.TB) *hsm.REK {
	t.Helper()
	rek, _, err := hsm.NewREK(t.Context(), newSoftkey(t), rand.Reader)
	if err != nil {
		t.Fatalf("NewREK err = %v, want nil", err)
	}
	return rek
}

func TestREKSealOpen(t *testing.T) {
	t.Parallel()
	w := newSoftkey(t)
	rek, sealed, err := hsm.NewREK(t.Context(), w, rand.Reader)
	if err != nil {
		t.Fatalf("NewREK err = %v, want nil", err)
	}
	blob, err := rek.Seal([]byte("signing key"), []byte("aad"))
	if err != nil {
		t.Fatalf("Seal err = %v, want nil", err)
	}
	reopened, err := hsm.OpenREK(t.Context(), w, sealed)
	if err != nil {
		t.Fatalf("OpenREK(NewREK sealed) err = %v, want nil", err)
	}
	got, err := reopened.Unseal(blob, []byte("aad"))
	if err != nil || !bytes.Equal(got, []byte("signing key")) {
		t.Errorf("reopened REK Unseal = %q, %v, want %q, nil", got, err, "signing key")
	}
}

func TestOpenREKWrongSoftkey(t *testing.T) {
	t.Parallel()
	_, sealed, err := hsm.NewREK(t.Context(), newSoftkey(t), rand.Reader)
	if err != nil {
		t.Fatalf("NewREK err = %v", err)
	}
	if _, err := hsm.OpenREK(t.Context(), newSoftkey(t), sealed); !errors.Is(err, hsm.ErrUnseal) {
		t.Errorf("OpenREK(other softkey) err = %v, want ErrUnseal", err)
	}
}

func TestVersionRoundTrip(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	for _, kt := range []hsm.KeyType{hsm.AES256, hsm.ChaCha20} {
		t.Run(string(kt), func(t *testing.T) {
			aad := hsm.VersionAAD("enclave", "key", 1)
			sealed, fp, err := rek.GenerateVersion(kt, aad)
			if err != nil {
				t.Fatalf("GenerateVersion(%s) err = %v, want nil", kt, err)
			}
			k, err := rek.OpenVersion(sealed, aad, 1)
			if err != nil {
				t.Fatalf("OpenVersion err = %v, want nil", err)
			}
			if k.Version() != 1 || k.Type() != kt || k.Fingerprint() != fp {
				t.Errorf("Key = (v%d, %s, %s), want (v1, %s, %s)", k.Version(), k.Type(), k.Fingerprint(), kt, fp)
			}
			ct, err := k.Encrypt([]byte("hello"), []byte("ad"))
			if err != nil {
				t.Fatalf("Encrypt err = %v", err)
			}
			pt, err := k.Decrypt(ct, []byte("ad"))
			if err != nil || string(pt) != "hello" {
				t.Errorf("Decrypt(Encrypt(hello)) = %q, %v, want hello, nil", pt, err)
			}
		})
	}
}
