// The HSM boundary: the Wrapper interface, sentinel errors, key types, and
// the associated data that binds a sealed key version to its place.
//
// VersionAAD layout (every field length-prefixed, so it is injective):
//
//	+-----------+----------------------------+-----------+---------+
//	| u32BE 24  | "kmsledger/key-version/v1" | u32BE len | enclave | …
//	+-----------+----------------------------+-----------+---------+
//	… | u32BE len | key name | u32BE version |
//
// References: the kms API's key types AES256 and ChaCha20 (KeyType);
// README.md, sections "How it works" and "Security model".

package hsm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// Wrapper seals and unseals the Root Encryption Key with a key held by an
// HSM. Backends: hsm/softkey, hsm/pkcs11 and hsm/remotekms (another
// kmsledger).
// Implementations must be safe for concurrent use.
type Wrapper interface {
	// Wrap encrypts and authenticates plaintext, binding it to aad.
	Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	// Unwrap reverses Wrap. It returns an error wrapping ErrUnseal if the
	// ciphertext was made by another key, was modified, or aad differs.
	Unwrap(ctx context.Context, ciphertext, aad []byte) ([]byte, error)
	// KeyID returns a stable, non-secret identifier of the HSM key, such as
	// "soft:" followed by 16 hex characters of a hash. It is safe to log.
	KeyID() string
}

// ErrUnseal means a sealed blob could not be opened: the HSM key or REK is
// the wrong one, the blob was modified, or it was moved to another place
// (its associated data differs).
var ErrUnseal = errors.New("hsm: unseal failed: wrong HSM key or tampered data")

// ErrDecrypt is returned for every failure to decrypt a client ciphertext.
// The API maps it to 400 "invalid ciphertext".
var ErrDecrypt = errors.New("hsm: invalid ciphertext")

// ErrInvalidKeyType is returned for a key type other than AES256 or ChaCha20.
var ErrInvalidKeyType = errors.New("hsm: invalid key type")

// ErrInvalidKeyMaterial is returned when imported key material is not
// exactly 32 bytes long.
var ErrInvalidKeyMaterial = errors.New("hsm: key material must be exactly 32 bytes")

// ErrInvalidLength is returned by Key.GenerateDataKey for a length outside
// 1..MaxDataKeyLength.
var ErrInvalidLength = errors.New("hsm: data key length must be between 1 and 1024 bytes")

// KeyType is the cipher of a key version, spelled as on the wire
// (the Type of a KEY:STATUS answer, wire.KeyStatusResponse).
type KeyType string

const (
	// AES256 is AES-256-GCM (NIST SP 800-38D) with a 12-byte nonce.
	AES256 KeyType = "AES256"
	// ChaCha20 is ChaCha20-Poly1305 (RFC 8439) with a 12-byte nonce.
	ChaCha20 KeyType = "ChaCha20"
)

// ParseKeyType parses the exact strings "AES256" and "ChaCha20". Anything
// else, including other capitalisations, returns ErrInvalidKeyType.
func ParseKeyType(s string) (KeyType, error) {
	switch KeyType(s) {
	case AES256, ChaCha20:
		return KeyType(s), nil
	}
	return "", fmt.Errorf("%w %q", ErrInvalidKeyType, s)
}

// versionAADLabel separates VersionAAD from every other associated data.
const versionAADLabel = "kmsledger/key-version/v1"

// VersionAAD returns the associated data that binds a sealed key version to
// its place. Every field is length-prefixed, so distinct inputs always give
// distinct outputs:
//
//	uint32 BE len ‖ "kmsledger/key-version/v1"
//	uint32 BE len ‖ enclave
//	uint32 BE len ‖ key name
//	uint32 BE version
func VersionAAD(enclave, key string, version uint32) []byte {
	b := make([]byte, 0, 16+len(versionAADLabel)+len(enclave)+len(key))
	for _, s := range []string{versionAADLabel, enclave, key} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return binary.BigEndian.AppendUint32(b, version)
}
