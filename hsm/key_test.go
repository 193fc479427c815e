package hsm_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/kmsledger/kmsledger/hsm"
)

var keyTypes = []hsm.KeyType{hsm.AES256, hsm.ChaCha20}

func TestEncryptDecrypt(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	for _, kt := range keyTypes {
		k := generateKey(t, rek, kt, 7)
		for _, n := range []int{0, 1, 32, 1000} {
			t.Run(fmt.Sprintf("%s/%d", kt, n), func(t *testing.T) {
				pt := bytes.Repeat([]byte{0xa5}, n)
				ad := []byte(`{"bucket":"bucket/object"}`)
				ct, err := k.Encrypt(pt, ad)
				if err != nil {
					t.Fatalf("Encrypt err = %v, want nil", err)
				}
				if want := 6 + 24 + n + 16; len(ct) != want {
					t.Errorf("len(ciphertext) = %d, want %d", len(ct), want)
				}
				if !bytes.Equal(ct[:6], []byte{'K', 0x02, 0, 0, 0, 7}) {
					t.Errorf("header = % x, want 4b 02 00 00 00 07", ct[:6])
				}
				if v, ok := hsm.CiphertextVersion(ct); !ok || v != 7 {
					t.Errorf("CiphertextVersion = %d, %v, want 7, true", v, ok)
				}
				got, err := k.Decrypt(ct, ad)
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Decrypt(Encrypt(pt)) = %x, %v, want %x, nil", got, err, pt)
				}
			})
		}
	}
}

func wantDecryptErr(t *testing.T, k *hsm.Key, ct, ad []byte, what string) {
	t.Helper()
	if pt, err := k.Decrypt(ct, ad); !errors.Is(err, hsm.ErrDecrypt) {
		t.Fatalf("Decrypt(%s) = %x, %v, want ErrDecrypt", what, pt, err)
	}
}

func TestDecryptTampered(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	for _, kt := range keyTypes {
		t.Run(string(kt), func(t *testing.T) {
			t.Parallel()
			k := generateKey(t, rek, kt, 1)
			ad := []byte("associated")
			ct, err := k.Encrypt([]byte("short message"), ad)
			if err != nil {
				t.Fatal(err)
			}
			for i := range len(ct) * 8 {
				bad := bytes.Clone(ct)
				bad[i/8] ^= 1 << (i % 8)
				wantDecryptErr(t, k, bad, ad, fmt.Sprintf("ciphertext bit %d flipped", i))
			}
			for n := range len(ct) {
				wantDecryptErr(t, k, ct[:n], ad, fmt.Sprintf("first %d bytes", n))
				wantDecryptErr(t, k, ct[n+1:], ad, fmt.Sprintf("without first %d bytes", n+1))
			}
			for i := range len(ad) * 8 {
				bad := bytes.Clone(ad)
				bad[i/8] ^= 1 << (i % 8)
				wantDecryptErr(t, k, ct, bad, fmt.Sprintf("ad bit %d flipped", i))
			}
			wantDecryptErr(t, k, ct, nil, "nil ad")
			wantDecryptErr(t, k, append(bytes.Clone(ct), 0), ad, "byte appended")
		})
	}
}

func TestDecryptOtherKey(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	tests := []struct {
		name     string
		enc, dec *hsm.Key
	}{
		{"AES256 other material", generateKey(t, rek, hsm.AES256, 1), generateKey(t, rek, hsm.AES256, 1)},
		{"ChaCha20 other material", generateKey(t, rek, hsm.ChaCha20, 1), generateKey(t, rek, hsm.ChaCha20, 1)},
		{"same material, other cipher", importKey(t, rek, hsm.AES256, material0to31(), "e", "k", 1), importKey(t, rek, hsm.ChaCha20, material0to31(), "e", "k", 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct, err := tc.enc.Encrypt([]byte("payload"), nil)
			if err != nil {
				t.Fatal(err)
			}
			wantDecryptErr(t, tc.dec, ct, nil, "ciphertext of another key")
		})
	}
}

// TestDecryptVersionSwapped shows the version field is authenticated: the
// same material opened as versions 1 and 2 does not accept a version-1
// ciphertext relabelled as version 2.
func TestDecryptVersionSwapped(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	for _, kt := range keyTypes {
		t.Run(string(kt), func(t *testing.T) {
			v1 := importKey(t, rek, kt, material0to31(), "e", "k", 1)
			v2 := importKey(t, rek, kt, material0to31(), "e", "k", 2)
			ct, err := v1.Encrypt([]byte("payload"), nil)
			if err != nil {
				t.Fatal(err)
			}
			wantDecryptErr(t, v2, ct, nil, "version-1 ciphertext given to version 2")
			swapped := bytes.Clone(ct)
			binary.BigEndian.PutUint32(swapped[2:6], 2)
			if v, ok := hsm.CiphertextVersion(swapped); !ok || v != 2 {
				t.Fatalf("CiphertextVersion(swapped) = %d, %v, want 2, true", v, ok)
			}
			wantDecryptErr(t, v2, swapped, nil, "version field changed to 2")
			wantDecryptErr(t, v1, swapped, nil, "version field changed to 2, version-1 key")
		})
	}
}

func TestCiphertextVersion(t *testing.T) {
	t.Parallel()
	valid := append([]byte{'K', 0x01, 0x01, 0x02, 0x03, 0x04}, make([]byte, 28)...)
	valid2 := append([]byte{'K', 0x02, 0x01, 0x02, 0x03, 0x04}, make([]byte, 40)...)
	tests := []struct {
		name string
		ct   []byte
		want uint32
		ok   bool
	}{
		{"valid minimal", valid, 0x01020304, true},
		{"valid longer", append(bytes.Clone(valid), 1, 2, 3), 0x01020304, true},
		{"nil", nil, 0, false},
		{"header only", valid[:6], 0, false},
		{"one byte short", valid[:33], 0, false},
		{"wrong magic", append([]byte{'k'}, valid[1:]...), 0, false},
		{"format 2 minimal", valid2, 0x01020304, true},
		{"format 2 longer", append(bytes.Clone(valid2), 1), 0x01020304, true},
		{"format 2 one byte short", valid2[:45], 0, false},
		{"format 2 header only", valid2[:6], 0, false},
		{"format 0", append([]byte{'K', 0x00}, valid2[2:]...), 0, false},
		{"format 3", append([]byte{'K', 0x03}, valid2[2:]...), 0, false},
		{"format 0x81", append([]byte{'K', 0x81}, valid2[2:]...), 0, false},
	}
	for _, tc := range tests {
		if v, ok := hsm.CiphertextVersion(tc.ct); v != tc.want || ok != tc.ok {
			t.Errorf("CiphertextVersion(%s) = %#x, %v, want %#x, %v", tc.name, v, ok, tc.want, tc.ok)
		}
	}
}

func TestGenerateDataKey(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	for _, kt := range keyTypes {
		k := generateKey(t, rek, kt, 1)
		for _, n := range []int{1, 32, 1024} {
			t.Run(fmt.Sprintf("%s/%d", kt, n), func(t *testing.T) {
				ad := []byte("{}")
				pt, ct, err := k.GenerateDataKey(n, ad)
				if err != nil {
					t.Fatalf("GenerateDataKey(%d) err = %v, want nil", n, err)
				}
				if len(pt) != n {
					t.Errorf("len(plaintext) = %d, want %d", len(pt), n)
				}
				got, err := k.Decrypt(ct, ad)
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Decrypt(data key ciphertext) = %x, %v, want %x, nil", got, err, pt)
				}
				if n >= 16 && bytes.Contains(ct, pt) {
					t.Errorf("data key ciphertext contains the plaintext")
				}
				pt2, _, err := k.GenerateDataKey(n, ad)
				if err != nil {
					t.Fatal(err)
				}
				if n >= 16 && bytes.Equal(pt, pt2) {
					t.Errorf("two data keys are equal, want fresh randomness")
				}
			})
		}
		for _, n := range []int{0, 1025, -1} {
			if _, _, err := k.GenerateDataKey(n, nil); !errors.Is(err, hsm.ErrInvalidLength) {
				t.Errorf("GenerateDataKey(%d) err = %v, want ErrInvalidLength", n, err)
			}
		}
	}
}

// TestMAC pins MAC = HMAC-SHA256(HKDF-SHA256(material, info
// "kmsledger/mac/v1"), msg); the expected value was computed independently.
func TestMAC(t *testing.T) {
	t.Parallel()
	const want = "600ad9055f20b9a7a05aced099d78deff3f045bd9218b1164d3e140eba52d2e9"
	rek := newREK(t)
	k := importKey(t, rek, hsm.AES256, material0to31(), "e", "k", 1)
	if got := hex.EncodeToString(k.MAC([]byte("message"))); got != want {
		t.Errorf("MAC(message) = %s, want %s", got, want)
	}
	if got := hex.EncodeToString(importKey(t, rek, hsm.ChaCha20, material0to31(), "e2", "k", 9).MAC([]byte("message"))); got != want {
		t.Errorf("MAC(message) with the same material = %s, want %s", got, want)
	}
	plain := hmac.New(sha256.New, material0to31())
	plain.Write([]byte("message"))
	if bytes.Equal(k.MAC([]byte("message")), plain.Sum(nil)) {
		t.Errorf("MAC uses the material directly, want a derived key")
	}
	if bytes.Equal(k.MAC([]byte("a")), k.MAC([]byte("b"))) {
		t.Errorf("MAC(a) == MAC(b)")
	}
	if bytes.Equal(k.MAC([]byte("a")), generateKey(t, rek, hsm.AES256, 1).MAC([]byte("a"))) {
		t.Errorf("two keys give the same MAC")
	}
}

func TestKeyConcurrent(t *testing.T) {
	t.Parallel()
	k := generateKey(t, newREK(t), hsm.AES256, 1)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				pt := fmt.Appendf(nil, "%d/%d", g, i)
				ct, err := k.Encrypt(pt, pt)
				if err != nil {
					t.Errorf("Encrypt err = %v", err)
					return
				}
				if got, err := k.Decrypt(ct, pt); err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Decrypt = %q, %v, want %q, nil", got, err, pt)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestEncryptNonceUniqueness(t *testing.T) {
	t.Parallel()
	for _, kt := range keyTypes {
		k := generateKey(t, newREK(t), kt, 1)
		seen := make(map[string]bool, 4096)
		for i := range 4096 {
			ct, err := k.Encrypt([]byte("same"), nil)
			if err != nil {
				t.Fatal(err)
			}
			nonce := string(ct[6:30])
			if seen[nonce] {
				t.Fatalf("%s: Encrypt %d repeated a nonce", kt, i)
			}
			seen[nonce] = true
		}
	}
}
