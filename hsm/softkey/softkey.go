// Software HSM key: AES-256-GCM wrapping of the Root Encryption Key.
//
// Summary: the key string is "hsm:aes256:" + standard (padded) base64 of 32
// random bytes. Wrap seals with AES-256-GCM under a random 12-byte nonce;
// the format byte is part of the associated data, so a future format
// cannot be confused with this one. The key ID is 16 hex characters of
// SHA-256 over a label and the key; DeriveSeed derives independent 32-byte
// seeds with HKDF-SHA256, so the key itself is used only for wrapping.
//
// Wrapped blob:
//
//	+------+----------+--------------------------+--------+
//	| 0x01 | nonce 12 | AES-256-GCM ciphertext   | tag 16 |
//	+------+----------+--------------------------+--------+
//	GCM associated data = 0x01 ‖ caller aad
//
//	KeyID        = "soft:" ‖ hex(SHA-256("kmsledger/softkey/id/v1" ‖ key))[:16]
//	DeriveSeed(l)= HKDF-SHA256(secret = key, salt = none, info = l, 32 bytes)
//
// References: NIST SP 800-38D (GCM); RFC 5869 (HKDF); RFC 4648 §4 (base64);
// FIPS 180-4 (SHA-256).

package softkey

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/kmsledger/kmsledger/hsm"
)

// Prefix starts every softkey string.
const Prefix = "hsm:aes256:"

const (
	keyLen     = 32   // AES-256.
	nonceLen   = 12   // GCM standard nonce; random nonces are safe far beyond our volume.
	format     = 0x01 // First byte of every wrapped blob.
	keyIDLabel = "kmsledger/softkey/id/v1"
	seedLen    = 32
)

// ErrInvalidKey is returned by Parse for a malformed key string.
var ErrInvalidKey = errors.New("softkey: invalid key")

// Key is a software HSM key. It implements hsm.Wrapper and is safe for
// concurrent use. Its zero value is not usable; use Parse.
type Key struct {
	key   [keyLen]byte
	aead  cipher.AEAD
	keyID string
}

var _ hsm.Wrapper = (*Key)(nil)

// Generate returns a new key string: Prefix + base64 of 32 bytes read from
// rand (normally crypto/rand.Reader).
func Generate(rand io.Reader) (string, error) {
	var b [keyLen]byte
	defer clear(b[:])
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("softkey: generate: read randomness: %w", err)
	}
	return Prefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// Parse parses a key string made by Generate. Errors wrap ErrInvalidKey
// and never contain the key.
func Parse(s string) (*Key, error) {
	s = strings.TrimSpace(s) // Tolerate a trailing newline from a key file.
	enc, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return nil, fmt.Errorf("%w: must start with %q", ErrInvalidKey, Prefix)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: the part after %q is not valid standard base64", ErrInvalidKey, Prefix)
	}
	defer clear(raw)
	if len(raw) != keyLen {
		return nil, fmt.Errorf("%w: must encode %d bytes, got %d", ErrInvalidKey, keyLen, len(raw))
	}
	k := &Key{}
	copy(k.key[:], raw)
	b, err := aes.NewCipher(k.key[:])
	if err != nil {
		return nil, fmt.Errorf("softkey: AES: %w", err)
	}
	if k.aead, err = cipher.NewGCM(b); err != nil {
		return nil, fmt.Errorf("softkey: GCM: %w", err)
	}
	id := sha256.Sum256(append([]byte(keyIDLabel), k.key[:]...))
	k.keyID = "soft:" + hex.EncodeToString(id[:8])
	return k, nil
}

// KeyID returns "soft:" and 16 hex characters identifying the key.
func (k *Key) KeyID() string { return k.keyID }

// Wrap encrypts plaintext bound to aad: 0x01 ‖ nonce ‖ ciphertext ‖ tag.
func (k *Key) Wrap(_ context.Context, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+nonceLen, 1+nonceLen+len(plaintext)+k.aead.Overhead())
	out[0] = format
	rand.Read(out[1:]) // Never fails (crypto/rand, Go ≥ 1.24).
	return k.aead.Seal(out, out[1:], plaintext, ad(aad)), nil
}

// Unwrap reverses Wrap. Any failure (wrong key, modified blob, other aad)
// returns an error wrapping hsm.ErrUnseal.
func (k *Key) Unwrap(_ context.Context, ciphertext, aad []byte) ([]byte, error) {
	if len(ciphertext) < 1+nonceLen+k.aead.Overhead() || ciphertext[0] != format {
		return nil, fmt.Errorf("softkey %s: %w", k.keyID, hsm.ErrUnseal)
	}
	pt, err := k.aead.Open(nil, ciphertext[1:1+nonceLen], ciphertext[1+nonceLen:], ad(aad))
	if err != nil {
		return nil, fmt.Errorf("softkey %s: %w", k.keyID, hsm.ErrUnseal)
	}
	return pt, nil
}

func ad(aad []byte) []byte { return append([]byte{format}, aad...) }

// DeriveSeed returns HKDF-SHA256(key, info = label), 32 bytes. Distinct
// labels give independent seeds; it is used to derive the root API key
// deterministically.
func (k *Key) DeriveSeed(label string) []byte {
	seed, err := hkdf.Key(sha256.New, k.key[:], nil, label, seedLen)
	if err != nil { // Only for lengths > 255·32 bytes, or non-approved use in FIPS mode.
		panic("softkey: HKDF: " + err.Error())
	}
	return seed
}

// String returns the key ID only; the key is never printed.
func (k *Key) String() string { return "softkey(" + k.keyID + ")" }

// GoString is like String, for %#v.
func (k *Key) GoString() string { return k.String() }

// LogValue implements slog.LogValuer with the key ID only.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON always fails, so a Key is never serialised by accident.
func (k *Key) MarshalJSON() ([]byte, error) {
	return nil, errors.New("softkey: a key cannot be marshalled")
}
