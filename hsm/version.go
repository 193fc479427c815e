// Key versions: generation, import and sealing under the REK.
//
// Summary: a key version is 32 bytes of material, born from crypto/rand
// (GenerateVersion) or supplied by an importer (ImportVersion), turned into
// a one-key Tink keyset (AES-256-GCM or ChaCha20-Poly1305, RAW/NoPrefix
// output) and sealed under the REK in the key-version domain. The associated
// data, normally VersionAAD(enclave, key, version), binds the blob to its
// place: a blob moved to another enclave, key or version does not open.
// The fingerprint is a commitment to the material that does not reveal it.
//
// Sealed key version (REK ciphertext, see rek.go; AD = 'V' ‖ aad):
//
//	+------+-----------+----------+-------------------------------------------+--------+
//	| 0x01 | key ID 4B | nonce 12 | enc(type ‖ [HMAC key 32] ‖ binary keyset) | tag 16 |
//	+------+-----------+----------+-------------------------------------------+--------+
//	type: 0x01 = AES256, 0x02 = ChaCha20 (inside the ciphertext), ORed with
//	0x80 when a 32-byte HMAC key imported from KES follows (ImportVersionKES,
//	kes.go); blobs without the flag are read exactly as before.
//
// Compact sealed key version (REK.CompactVersions; same REK ciphertext, AD):
//
//	enc(type|0x40 ‖ [HMAC key 32] ‖ material 32)
//
//	The flag 0x40 says that the 32 bytes of material follow alone, not in a
//	Tink keyset: 66 bytes sealed instead of 138–142 for AES-256 (the
//	keyset's key id is a random varint), 98 instead of 170–174 with an
//	HMAC key. The type says which Tink key the material becomes when it is
//	opened, as for a keyset. Versions before the flag cannot open such a
//	blob, so only a single node writes it (commands.NewHandler); both forms
//	are always read.
//
//	fingerprint = hex(HMAC-SHA256(key = material, "kmsledger/fingerprint/v1"))
//
// References: RFC 2104 (HMAC); FIPS 180-4 (SHA-256); Tink wire format.

package hsm

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

const fingerprintLabel = "kmsledger/fingerprint/v1"

// Type bytes inside a sealed key version. Append-only: never reuse a value.
const (
	typeAES256   = 0x01
	typeChaCha20 = 0x02
	flagHMACKey  = 0x80 // ORed into the type byte: a KES HMAC key follows.
	flagRaw      = 0x40 // ORed into the type byte: the material follows alone (compact form).
)

func typeByte(kt KeyType) (byte, error) {
	switch kt {
	case AES256:
		return typeAES256, nil
	case ChaCha20:
		return typeChaCha20, nil
	}
	return 0, fmt.Errorf("%w %q", ErrInvalidKeyType, kt)
}

// GenerateVersion creates 32 bytes of fresh material for a key version of
// type kt and returns it sealed under the REK, bound to aad (use
// VersionAAD), with its fingerprint.
func (r *REK) GenerateVersion(kt KeyType, aad []byte) (sealed []byte, fingerprint string, err error) {
	var material [materialLen]byte
	defer clear(material[:])
	rand.Read(material[:]) // Never fails (crypto/rand, Go ≥ 1.24).
	return r.ImportVersion(kt, material[:], aad)
}

// ImportVersion seals raw, which must be exactly 32 bytes, as a key version
// of type kt bound to aad (use VersionAAD), and returns the sealed blob and
// the fingerprint. The same raw bytes always give the same fingerprint. raw
// is not modified or retained; the caller should clear it.
func (r *REK) ImportVersion(kt KeyType, raw []byte, aad []byte) (sealed []byte, fingerprint string, err error) {
	return r.importVersion(kt, raw, nil, aad)
}

// importVersion seals raw, and hmacKey if not nil (validated by the caller).
func (r *REK) importVersion(kt KeyType, raw, hmacKey, aad []byte) (sealed []byte, fingerprint string, err error) {
	tb, err := typeByte(kt)
	if err != nil {
		return nil, "", err
	}
	if len(raw) != materialLen {
		return nil, "", fmt.Errorf("%w (got %d)", ErrInvalidKeyMaterial, len(raw))
	}
	body := raw // the compact form: the material itself
	if r.compact {
		tb |= flagRaw
	} else {
		ks, err := oneKeyKeyset(kt, raw, false, 0)
		if err != nil {
			return nil, "", err
		}
		defer clear(ks)
		body = ks
	}
	pt := make([]byte, 0, 1+len(hmacKey)+len(body)) // One allocation, cleared below.
	if hmacKey != nil {
		tb |= flagHMACKey
	}
	pt = append(append(append(pt, tb), hmacKey...), body...)
	defer clear(pt)
	sealed, err = r.seal(domainVersion, pt, aad)
	if err != nil {
		return nil, "", err
	}
	return sealed, fingerprintOf(raw), nil
}

// CompactVersions returns a REK that seals the key versions it generates
// and imports in the compact form (the material without a Tink keyset; see
// the top of this file). It opens both forms, as r does, and r is
// unchanged.
func (r *REK) CompactVersions() *REK {
	c := *r
	c.compact = true
	return &c
}

// OpenVersion unseals a key version sealed by GenerateVersion, ImportVersion
// or ImportVersionKES with the same aad. version is the version number the
// Key writes into its ciphertexts; it should be the one aad names. OpenVersion
// returns an error wrapping ErrUnseal if the blob was modified, sealed under
// another REK, or aad differs (the blob was moved).
func (r *REK) OpenVersion(sealed, aad []byte, version uint32) (*Key, error) {
	pt, err := r.unseal(domainVersion, sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("hsm: open key version %d: %w", version, err)
	}
	defer clear(pt)
	if len(pt) < 1 {
		return nil, fmt.Errorf("hsm: open key version %d: %w: empty", version, errKeyset)
	}
	tb, rest := pt[0], pt[1:]
	var hmacKey *[macKeyLen]byte
	if tb&flagHMACKey != 0 {
		if len(rest) < macKeyLen {
			return nil, fmt.Errorf("hsm: open key version %d: %w: short HMAC key", version, errKeyset)
		}
		hmacKey = new([macKeyLen]byte)
		copy(hmacKey[:], rest[:macKeyLen])
		rest = rest[macKeyLen:]
		tb &^= flagHMACKey
	}
	raw := tb&flagRaw != 0
	tb &^= flagRaw
	var kt KeyType
	switch tb {
	case typeAES256:
		kt = AES256
	case typeChaCha20:
		kt = ChaCha20
	default:
		return nil, fmt.Errorf("hsm: open key version %d: %w: type byte %#x", version, errKeyset, pt[0])
	}
	if raw {
		if len(rest) != materialLen {
			return nil, fmt.Errorf("hsm: open key version %d: %w: %d bytes of material, want %d", version, errKeyset, len(rest), materialLen)
		}
		return newKey(version, kt, rest, hmacKey, r.blocks)
	}
	// The keyset is read directly (keyset.go, rawKeysetMaterial): Tink's
	// generic parse and primitive cost more than the rest of a key cache
	// miss. A keyset laid out otherwise goes through Tink.
	material, ok := rawKeysetMaterial(rest, kt)
	if !ok {
		if _, material, err = parseKeyset(rest, kt, false); err != nil {
			return nil, fmt.Errorf("hsm: open key version %d: %w", version, err)
		}
		defer clear(material)
	}
	return newKey(version, kt, material, hmacKey, r.blocks)
}

// fingerprintOf commits to material without revealing it.
func fingerprintOf(material []byte) string {
	m := hmac.New(sha256.New, material)
	m.Write([]byte(fingerprintLabel))
	return hex.EncodeToString(m.Sum(nil))
}

// Fingerprint returns the fingerprint of raw key material, as recorded
// for a version imported with it: a commitment that identifies equal
// material without revealing it. Migration tools use it to tell "same
// key" from "different key" before importing.
func Fingerprint(material []byte) string { return fingerprintOf(material) }
