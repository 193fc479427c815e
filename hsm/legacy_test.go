package hsm_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/kmsledger/kmsledger/hsm"
)

// minioSeal builds a MinIO built-in KMS ciphertext (README.md, "Ciphertext
// format"): AEAD ct‖tag16 ‖ IV16 ‖ nonce12, with the AEAD key
// HMAC-SHA256(master, IV) for AES256 or HChaCha20(master, IV) for ChaCha20.
func minioSeal(t *testing.T, kt hsm.KeyType, master, pt, ad []byte) []byte {
	t.Helper()
	iv, nonce := make([]byte, 16), make([]byte, 12)
	rand.Read(iv)
	rand.Read(nonce)
	return minioSealWith(t, kt, master, iv, nonce, pt, ad)
}

func minioSealWith(t *testing.T, kt hsm.KeyType, master, iv, nonce, pt, ad []byte) []byte {
	t.Helper()
	var a cipher.AEAD
	switch kt {
	case hsm.AES256:
		m := hmac.New(sha256.New, master)
		m.Write(iv)
		b, err := aes.NewCipher(m.Sum(nil))
		if err != nil {
			t.Fatal(err)
		}
		if a, err = cipher.NewGCM(b); err != nil {
			t.Fatal(err)
		}
	case hsm.ChaCha20:
		sub, err := chacha20.HChaCha20(master, iv)
		if err != nil {
			t.Fatal(err)
		}
		if a, err = chacha20poly1305.New(sub); err != nil {
			t.Fatal(err)
		}
	}
	ct := a.Seal(nil, nonce, pt, ad)
	return append(append(ct, slices.Clone(iv)...), nonce...)
}

func TestDecryptMinIOBuiltinFormat(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	master := material0to31()
	ad := []byte(`{"mybucket":"mybucket/object"}`)
	for _, kt := range keyTypes {
		t.Run(string(kt), func(t *testing.T) {
			k := importKey(t, rek, kt, master, "e", "minio", 1)
			for _, pt := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte{1}, 32)} {
				ct := minioSeal(t, kt, master, pt, ad)
				got, err := k.Decrypt(ct, ad)
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Decrypt(MinIO %d-byte ciphertext) = %x, %v, want %x, nil", len(pt), got, err, pt)
				}
				wantDecryptErr(t, k, ct, []byte("{}"), "MinIO ciphertext with other ad")
				for i := range len(ct) * 8 {
					bad := bytes.Clone(ct)
					bad[i/8] ^= 1 << (i % 8)
					wantDecryptErr(t, k, bad, ad, "MinIO ciphertext with a bit flipped")
				}
			}
			other := generateKey(t, rek, kt, 1)
			wantDecryptErr(t, other, minioSeal(t, kt, master, []byte("x"), ad), ad, "MinIO ciphertext under another key")
		})
	}
	aes := importKey(t, rek, hsm.AES256, master, "e", "k", 1)
	wantDecryptErr(t, aes, minioSeal(t, hsm.ChaCha20, master, []byte("x"), nil), nil, "ChaCha20 MinIO ciphertext under an AES256 key")
}

// TestDecryptMinIOWithOurHeader covers a MinIO ciphertext that happens to
// start with a valid header naming the key's own version: our AEAD fails on
// it, and the fallback must still be tried. Both ciphers are stream ciphers,
// so choosing the plaintext's first 6 bytes as keystream XOR header makes
// the ciphertext start with that header.
func TestDecryptMinIOWithOurHeader(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	master := material0to31()
	for _, header := range [][]byte{{'K', 0x01, 0, 0, 0, 1}, {'K', 0x02, 0, 0, 0, 1}} {
		for _, kt := range keyTypes {
			k := importKey(t, rek, kt, master, "e", "k", 1)
			iv, nonce := make([]byte, 16), make([]byte, 12)
			rand.Read(iv)
			rand.Read(nonce)
			pt := make([]byte, 40)
			keystream := minioSealWith(t, kt, master, iv, nonce, make([]byte, 6), nil)
			for i := range header {
				pt[i] = keystream[i] ^ header[i]
			}
			ct := minioSealWith(t, kt, master, iv, nonce, pt, nil)
			if v, ok := hsm.CiphertextVersion(ct); !ok || v != 1 {
				t.Fatalf("%s: CiphertextVersion(crafted MinIO ciphertext) = %d, %v, want 1, true", kt, v, ok)
			}
			if got, err := k.Decrypt(ct, nil); err != nil || !bytes.Equal(got, pt) {
				t.Errorf("%s: Decrypt(MinIO ciphertext with our header % x) = %x, %v, want %x, nil", kt, header, got, err, pt)
			}
		}
	}
}

type kesVector struct {
	Description   string      `json:"description"`
	KeyType       hsm.KeyType `json:"key_type"`
	KeyHex        string      `json:"key_hex"`
	ContextB64    string      `json:"context_b64"`
	PlaintextHex  string      `json:"plaintext_hex"`
	CiphertextHex string      `json:"ciphertext_hex"`
}

// TestDecryptKESVectors decrypts raw ciphertexts produced by a real KES
// (testdata/README.md) after importing the same key bytes.
func TestDecryptKESVectors(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/kes-raw-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []kesVector
	if err := json.Unmarshal(data, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) < 8 {
		t.Fatalf("loaded %d vectors, want 8", len(vectors))
	}
	rek := newREK(t)
	for i, v := range vectors {
		raw, _ := hex.DecodeString(v.KeyHex)
		ad, _ := base64.StdEncoding.DecodeString(v.ContextB64)
		want, _ := hex.DecodeString(v.PlaintextHex)
		ct, _ := hex.DecodeString(v.CiphertextHex)
		k := importKey(t, rek, v.KeyType, raw, "e", "kes", 1)
		got, err := k.Decrypt(ct, ad)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("vector %d (%s, %s): Decrypt = %x, %v, want %x, nil", i, v.KeyType, v.Description, got, err, want)
		}
		wantDecryptErr(t, k, ct, append(bytes.Clone(ad), ' '), "KES vector with other context")
	}
}
