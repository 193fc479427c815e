package hsm_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
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
	got, err := reopened.Unseal(blob, []byte("aad"), hsm.InsecureSecretAccess())
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

// faultWrapper injects backend failures; it is the only fake in these tests.
type faultWrapper struct {
	hsm.Wrapper
	wrapErr, unwrapErr error
}

func (f faultWrapper) Wrap(ctx context.Context, pt, aad []byte) ([]byte, error) {
	if f.wrapErr != nil {
		return nil, f.wrapErr
	}
	return f.Wrapper.Wrap(ctx, pt, aad)
}

func (f faultWrapper) Unwrap(ctx context.Context, ct, aad []byte) ([]byte, error) {
	if f.unwrapErr != nil {
		return nil, f.unwrapErr
	}
	return f.Wrapper.Unwrap(ctx, ct, aad)
}

func TestREKBackendErrorsPassThrough(t *testing.T) {
	t.Parallel()
	errHSM := errors.New("hsm unreachable")
	w := newSoftkey(t)
	if _, _, err := hsm.NewREK(t.Context(), faultWrapper{Wrapper: w, wrapErr: errHSM}, rand.Reader); !errors.Is(err, errHSM) {
		t.Errorf("NewREK(failing Wrap) err = %v, want %v", err, errHSM)
	}
	_, sealed, err := hsm.NewREK(t.Context(), w, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, err = hsm.OpenREK(t.Context(), faultWrapper{Wrapper: w, unwrapErr: errHSM}, sealed)
	if !errors.Is(err, errHSM) || errors.Is(err, hsm.ErrUnseal) {
		t.Errorf("OpenREK(failing Unwrap) err = %v, want %v and not ErrUnseal", err, errHSM)
	}
}

func TestNewREKShortRandomness(t *testing.T) {
	t.Parallel()
	if _, _, err := hsm.NewREK(t.Context(), newSoftkey(t), bytes.NewReader(make([]byte, 35))); err == nil {
		t.Errorf("NewREK(35 random bytes) err = nil, want an error")
	}
}

// TestNewREKUsesInjectedRandomness shows that the REK comes from rand: two
// REKs made from the same bytes open each other's blobs.
func TestNewREKUsesInjectedRandomness(t *testing.T) {
	t.Parallel()
	seed := bytes.Repeat([]byte{0x5a}, 36)
	a, _, err := hsm.NewREK(t.Context(), newSoftkey(t), bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := hsm.NewREK(t.Context(), newSoftkey(t), bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	blob, err := a.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Unseal(blob, nil, hsm.InsecureSecretAccess()); err != nil || string(got) != "x" {
		t.Errorf("Unseal under a REK from the same randomness = %q, %v, want x, nil", got, err)
	}
	if _, err := newREK(t).Unseal(blob, nil, hsm.InsecureSecretAccess()); !errors.Is(err, hsm.ErrUnseal) {
		t.Errorf("Unseal under an unrelated REK err = %v, want ErrUnseal", err)
	}
}

func TestOpenREKTampered(t *testing.T) {
	t.Parallel()
	w := newSoftkey(t)
	_, sealed, err := hsm.NewREK(t.Context(), w, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(sealed) * 8 {
		bad := bytes.Clone(sealed)
		bad[i/8] ^= 1 << (i % 8)
		if _, err := hsm.OpenREK(t.Context(), w, bad); !errors.Is(err, hsm.ErrUnseal) {
			t.Fatalf("OpenREK(bit %d flipped) err = %v, want ErrUnseal", i, err)
		}
	}
	for n := range len(sealed) {
		if _, err := hsm.OpenREK(t.Context(), w, sealed[:n]); !errors.Is(err, hsm.ErrUnseal) {
			t.Fatalf("OpenREK(first %d bytes) err = %v, want ErrUnseal", n, err)
		}
	}
}

// TestOpenREKRejectsOtherAAD shows the sealed REK is bound to its purpose:
// a blob the same HSM key wrapped for something else does not open as a REK.
func TestOpenREKRejectsOtherAAD(t *testing.T) {
	t.Parallel()
	w := newSoftkey(t)
	_, sealed, err := hsm.NewREK(t.Context(), w, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := w.Unwrap(t.Context(), sealed[1:], []byte("kmsledger/rek/v1"))
	if err != nil {
		t.Fatalf("Unwrap(sealed REK, documented aad) err = %v, want nil", err)
	}
	other, err := w.Wrap(t.Context(), ks, []byte("something else"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hsm.OpenREK(t.Context(), w, append([]byte{0x01}, other...)); !errors.Is(err, hsm.ErrUnseal) {
		t.Errorf("OpenREK(wrapped with other aad) err = %v, want ErrUnseal", err)
	}
}

func TestSealUnseal(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	aad := []byte("signing-key/1")
	blob, err := rek.Seal([]byte("secret"), aad)
	if err != nil {
		t.Fatalf("Seal err = %v", err)
	}
	if bytes.Contains(blob, []byte("secret")) {
		t.Errorf("Seal output contains the plaintext")
	}
	tests := []struct {
		name string
		rek  *hsm.REK
		blob []byte
		aad  []byte
	}{
		{"other aad", rek, blob, []byte("signing-key/2")},
		{"nil aad", rek, blob, nil},
		{"other REK", newREK(t), blob, aad},
		{"truncated", rek, blob[:len(blob)-1], aad},
		{"empty", rek, nil, aad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.rek.Unseal(tc.blob, tc.aad, hsm.InsecureSecretAccess()); !errors.Is(err, hsm.ErrUnseal) {
				t.Errorf("Unseal(%s) err = %v, want ErrUnseal", tc.name, err)
			}
		})
	}
	for i := range len(blob) * 8 {
		bad := bytes.Clone(blob)
		bad[i/8] ^= 1 << (i % 8)
		if _, err := rek.Unseal(bad, aad, hsm.InsecureSecretAccess()); !errors.Is(err, hsm.ErrUnseal) {
			t.Fatalf("Unseal(bit %d flipped) err = %v, want ErrUnseal", i, err)
		}
	}
}

// TestSealDomains shows REK.Unseal cannot read a sealed key version (which
// would expose its material) and OpenVersion cannot open a Seal blob.
func TestSealDomains(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	aad := hsm.VersionAAD("e", "k", 1)
	sealed, _, err := rek.GenerateVersion(hsm.AES256, aad)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := rek.Unseal(sealed, aad, hsm.InsecureSecretAccess()); !errors.Is(err, hsm.ErrUnseal) {
		t.Errorf("Unseal(sealed key version) = %d bytes, err = %v, want ErrUnseal", len(pt), err)
	}
	blob, err := rek.Seal(append([]byte{0x01}, make([]byte, 64)...), aad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rek.OpenVersion(blob, aad, 1); !errors.Is(err, hsm.ErrUnseal) {
		t.Errorf("OpenVersion(Seal blob) err = %v, want ErrUnseal", err)
	}
}

func TestREKString(t *testing.T) {
	t.Parallel()
	if s := fmt.Sprint(newREK(t)); s != "hsm.REK(redacted)" {
		t.Errorf("fmt.Sprint(REK) = %q, want hsm.REK(redacted)", s)
	}
}

// TestUnsealNeedsSecretAccess shows REK.Unseal hands out nothing for a zero
// SecretAccess, even for an authentic blob, and that the refusal is not
// mistaken for a tampered blob (ErrUnseal); the same blob opens with the
// token from InsecureSecretAccess.
func TestUnsealNeedsSecretAccess(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	blob, err := rek.Seal([]byte("root api key"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	for name, access := range map[string]hsm.SecretAccess{"zero literal": {}, "zero var": *new(hsm.SecretAccess)} {
		pt, err := rek.Unseal(blob, []byte("aad"), access)
		if err == nil || errors.Is(err, hsm.ErrUnseal) || pt != nil {
			t.Errorf("Unseal(%s SecretAccess) = %q, %v, want nil and an error other than ErrUnseal", name, pt, err)
		}
	}
	if pt, err := rek.Unseal(blob, []byte("aad"), hsm.InsecureSecretAccess()); err != nil || string(pt) != "root api key" {
		t.Errorf("Unseal(InsecureSecretAccess()) = %q, %v, want the plaintext", pt, err)
	}
}
