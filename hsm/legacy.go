// Decrypt fallback for MinIO's built-in KMS and KES raw ciphertexts.
//
// Summary: MinIO's single-key KMS (MINIO_KMS_SECRET_KEY) and KES since
// v0.24 write ciphertexts without any header. With the 32-byte master key K
// of an imported key, a random 16-byte IV and a random 12-byte nonce:
//
//	AES256:   subkey = HMAC-SHA256(key = K, msg = IV);  AEAD = AES-256-GCM(subkey)
//	ChaCha20: subkey = HChaCha20(K, IV);                AEAD = ChaCha20-Poly1305(subkey)
//	sealed   = AEAD.Seal(nonce, plaintext, associated data = caller AD)
//
// Layout (len = len(plaintext) + 44):
//
//	+-------------------------+--------+-------+----------+
//	| encrypted plaintext     | tag 16 | IV 16 | nonce 12 |
//	+-------------------------+--------+-------+----------+
//
// The cipher is the stored key's type: the raw format carries no label.
// KES's older JSON/msgpack envelopes (vectors in testdata/kes/) are parsed in
// kes.go, which reuses legacyAEAD with the cipher their label names.
//
// References: the ciphertexts of MinIO's built-in KMS and of KES (README.md,
// "Ciphertext format"; vectors in testdata/kes/); RFC 2104 (HMAC);
// NIST SP 800-38D (GCM); RFC 8439 (ChaCha20-Poly1305); HChaCha20:
// draft-irtf-cfrg-xchacha §2.2.

package hsm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"
)

const (
	legacyIVLen    = 16 // HChaCha20 input size; also hashed by the AES KDF.
	legacyNonceLen = 12
	legacyTagLen   = 16
	legacyMinLen   = legacyTagLen + legacyIVLen + legacyNonceLen
)

// decryptLegacy opens a raw MinIO/KES ciphertext. ok is false on any failure.
func (k *Key) decryptLegacy(ct, ad []byte) (plaintext []byte, ok bool) {
	if len(ct) < legacyMinLen {
		return nil, false
	}
	n := len(ct) - legacyIVLen - legacyNonceLen
	sealed, iv, nonce := ct[:n], ct[n:n+legacyIVLen], ct[n+legacyIVLen:]
	a, err := legacyAEAD(k.Type(), k.material[:], iv)
	if err != nil {
		return nil, false
	}
	pt, err := a.Open(nil, nonce, sealed, ad)
	if err != nil {
		return nil, false
	}
	return pt, true
}

// legacyAEAD derives the per-ciphertext subkey of cipher kt from the
// material and iv (kes.go passes the cipher a ciphertext's label names).
func legacyAEAD(kt KeyType, material, iv []byte) (cipher.AEAD, error) {
	switch kt {
	case AES256:
		m := hmac.New(sha256.New, material)
		m.Write(iv)
		subkey := m.Sum(nil)
		defer clear(subkey)
		b, err := aes.NewCipher(subkey)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	case ChaCha20:
		subkey, err := chacha20.HChaCha20(material, iv)
		if err != nil {
			return nil, err
		}
		defer clear(subkey)
		return chacha20poly1305.New(subkey)
	}
	return nil, ErrInvalidKeyType
}
