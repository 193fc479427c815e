// Data-plane cryptography with an unsealed key version.
//
// Summary: Encrypt seals client data with the version's Tink AEAD (AES-256-GCM
// or ChaCha20-Poly1305, random 96-bit nonce) and prefixes a 6-byte header
// that names the key version, because MinIO stores only the key name and the
// ciphertext and always decrypts with version 0 (spec kms-api.md §4). The
// header is part of the AEAD associated data, so changing the version field
// (or anything else) makes decryption fail. Decrypt falls back to KES's
// JSON and msgpack envelopes (kes.go) and to MinIO's built-in KMS / KES raw
// format (legacy.go) for ciphertexts not in our format. Every decrypt
// failure is ErrDecrypt, with no further detail.
//
// Ciphertext (format 0x01):
//
//	 0      1      2                  6          18             len-16   len
//	+------+------+------------------+----------+---------------+--------+
//	| 0x4B | 0x01 | key version u32BE| nonce 12 | ciphertext    | tag 16 |
//	+------+------+------------------+----------+---------------+--------+
//	  'K'   format   (header: 6 bytes) \____ Tink AEAD output, NoPrefix ___/
//	AEAD associated data = header (6 bytes) ‖ caller AD
//
//	MAC key = the HMAC key imported from KES, if any (ImportVersionKES), else
//	          HKDF-SHA256(secret = material, salt = none, info = "kmsledger/mac/v1", 32 bytes)
//	MAC(msg) = HMAC-SHA256(MAC key, msg)
//
// References: NIST SP 800-38D (GCM); RFC 8439 (ChaCha20-Poly1305);
// RFC 5869 (HKDF); RFC 2104 (HMAC); spec/kms-api.md §2.4, §4.

package hsm

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"

	"github.com/tink-crypto/tink-go/v2/tink"
)

const (
	ctMagic    = 'K'  // 0x4B: first byte of every kmsledger ciphertext.
	ctFormat   = 0x01 // Ciphertext format version; a new layout gets a new value.
	headerLen  = 6    // magic ‖ format ‖ uint32 key version.
	minCTLen   = headerLen + nonceLen + tagLen
	macLabel   = "kmsledger/mac/v1"
	macKeyLen  = 32
	maxDataKey = 1024 // spec kms-api.md §2.4 GenerateKeyRequest.Length maximum.
	minDataKey = 1
)

// MaxDataKeyLength is the largest data key GenerateDataKey produces.
const MaxDataKeyLength = maxDataKey

// Key is an unsealed key version. It is safe for concurrent use. Its raw
// material never leaves the package; String and LogValue redact it.
type Key struct {
	version     uint32
	kt          KeyType
	aead        tink.AEAD // Tink RAW primitive over material.
	material    []byte    // 32 bytes; for the legacy formats and derived keys.
	macKey      []byte    // The imported KES HMAC key, or HKDF(material, "kmsledger/mac/v1").
	fingerprint string
}

// newKey builds a Key; hmacKey nil means derive the MAC key.
func newKey(version uint32, kt KeyType, a tink.AEAD, material, hmacKey []byte) (*Key, error) {
	macKey := hmacKey
	if macKey == nil {
		var err error
		if macKey, err = hkdf.Key(sha256.New, material, nil, macLabel, macKeyLen); err != nil {
			return nil, fmt.Errorf("hsm: derive MAC key: %w", err)
		}
	}
	return &Key{
		version:     version,
		kt:          kt,
		aead:        a,
		material:    material,
		macKey:      macKey,
		fingerprint: fingerprintOf(material),
	}, nil
}

// Version returns the key version number written into ciphertexts.
func (k *Key) Version() uint32 { return k.version }

// Type returns the key's cipher.
func (k *Key) Type() KeyType { return k.kt }

// Fingerprint returns hex(HMAC-SHA256(material, "kmsledger/fingerprint/v1")):
// equal material gives equal fingerprints; the material is not revealed.
func (k *Key) Fingerprint() string { return k.fingerprint }

// String returns a description without secrets.
func (k *Key) String() string {
	return fmt.Sprintf("hsm.Key(v%d %s fp=%.16s)", k.version, k.kt, k.fingerprint)
}

// LogValue implements slog.LogValuer without secrets.
func (k *Key) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Uint64("version", uint64(k.version)),
		slog.String("type", string(k.kt)),
		slog.String("fingerprint", k.fingerprint),
	)
}

func (k *Key) header() []byte {
	h := make([]byte, headerLen)
	h[0], h[1] = ctMagic, ctFormat
	binary.BigEndian.PutUint32(h[2:], k.version)
	return h
}

// Encrypt encrypts plaintext bound to ad and returns a self-describing
// ciphertext (header ‖ nonce ‖ ciphertext ‖ tag) that names this version.
func (k *Key) Encrypt(plaintext, ad []byte) ([]byte, error) {
	h := k.header()
	ct, err := k.aead.Encrypt(plaintext, append(h, ad...))
	if err != nil {
		return nil, fmt.Errorf("hsm: encrypt: %w", err)
	}
	return append(h, ct...), nil
}

// Decrypt decrypts a ciphertext made by Encrypt (or GenerateDataKey) with
// this version and the same ad. A ciphertext not in our format is tried as
// a KES JSON envelope, a KES msgpack envelope, then MinIO's built-in KMS /
// KES raw format (kes.go). Every failure returns ErrDecrypt.
func (k *Key) Decrypt(ciphertext, ad []byte) ([]byte, error) {
	if v, ok := CiphertextVersion(ciphertext); ok && v == k.version {
		h := ciphertext[:headerLen:headerLen]
		if pt, err := k.aead.Decrypt(ciphertext[headerLen:], append(h, ad...)); err == nil {
			return pt, nil
		}
	}
	if pt, ok := k.decryptKES(ciphertext, ad); ok {
		return pt, nil
	}
	return nil, ErrDecrypt
}

// GenerateDataKey returns length (1..MaxDataKeyLength) bytes of fresh
// randomness and their encryption under this version bound to ad.
// Callers map a requested length of 0 to 32 before calling.
func (k *Key) GenerateDataKey(length int, ad []byte) (plaintext, ciphertext []byte, err error) {
	if length < minDataKey || length > maxDataKey {
		return nil, nil, fmt.Errorf("%w (got %d)", ErrInvalidLength, length)
	}
	plaintext = make([]byte, length)
	rand.Read(plaintext) // Never fails (crypto/rand, Go ≥ 1.24).
	ciphertext, err = k.Encrypt(plaintext, ad)
	if err != nil {
		clear(plaintext)
		return nil, nil, err
	}
	return plaintext, ciphertext, nil
}

// MAC returns HMAC-SHA256(msg). The key is the HMAC key imported with the
// version from KES (ImportVersionKES), so KES /v1/key/hmac results stay the
// same; otherwise it is derived from the material with HKDF-SHA256 (info
// "kmsledger/mac/v1"), so the MAC key and the encryption key are independent.
func (k *Key) MAC(msg []byte) []byte {
	m := hmac.New(sha256.New, k.macKey)
	m.Write(msg)
	return m.Sum(nil)
}

// CiphertextVersion reads the key version from a ciphertext's header. ok is
// false if ct is not in our format (wrong magic or format byte, or too short
// to hold a header, nonce and tag); it does not authenticate anything.
func CiphertextVersion(ct []byte) (version uint32, ok bool) {
	if len(ct) < minCTLen || ct[0] != ctMagic || ct[1] != ctFormat {
		return 0, false
	}
	return binary.BigEndian.Uint32(ct[2:headerLen]), true
}
