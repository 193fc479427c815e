// Ciphertext format 0x02: extended-nonce AEADs, safe for unlimited
// messages per key version.
//
// Summary: format 0x01 (key.go) seals every message directly under the
// version's key with AES-256-GCM or ChaCha20-Poly1305 and a random 96-bit
// nonce. With random nonces NIST SP 800-38D §8.3 caps a key at 2^32
// messages (nonce-collision probability ≤ 2^-32), about 1.7 days at 30,000
// data keys a second, and nothing enforced the cap. Format 0x02 uses a
// 192-bit random nonce instead, with an AEAD built for it:
//
//   - AES256 versions: XAES-256-GCM (C2SP). The first 96 bits of the nonce
//     feed an AES-CMAC-based KDF (NIST SP 800-108r1 counter mode) that
//     derives a fresh AES-256 key per message; AES-256-GCM then encrypts
//     with the remaining 96 bits as its nonce. Each subkey encrypts about
//     one message, and a (subkey, nonce) pair repeats only if all 192
//     random bits do, so random nonces are safe for a virtually unlimited
//     number of messages under one version (the C2SP spec's design goal).
//   - ChaCha20 versions: XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha):
//     HChaCha20 over the first 128 nonce bits derives a per-message key,
//     ChaCha20-Poly1305 (RFC 8439) encrypts with the last 64 bits. 192-bit
//     random nonces can be drawn without practical limit.
//
// Both are Tink primitives (aead/xaesgcm with 12-byte salt, which is exactly
// C2SP XAES-256-GCM; aead/xchacha20poly1305), RAW output.
//
// The key: stored key versions are not re-sealed or migrated. The same
// 32 bytes of material that format 0x01, the MAC and the KES/MinIO formats
// use are the input of HKDF-SHA256 with a label naming the format and the
// cipher; its output keys the format-0x02 AEAD. This keeps the constructions
// apart: XAES's CMAC subkey AES_K(0^128) would otherwise equal the GCM hash
// key of format 0x01, and XChaCha20's HChaCha20(K, nonce[:16]) is the very
// derivation MinIO's raw ChaCha20 format uses with K (legacy.go), which
// would let a format-0x02 ciphertext be re-laid out as a MinIO one. With
// separate keys, a ciphertext of one format never opens as another.
//
// Ciphertext (format 0x02):
//
//	 0      1      2                  6          30             len-16   len
//	+------+------+------------------+----------+---------------+--------+
//	| 0x4B | 0x02 | key version u32BE| nonce 24 | ciphertext    | tag 16 |
//	+------+------+------------------+----------+---------------+--------+
//	  'K'   format   (header: 6 bytes) \______ Tink AEAD output, RAW ______/
//	AEAD associated data = header (6 bytes) ‖ caller AD
//
//	K2  = HKDF-SHA256(secret = material, salt = none,
//	                  info = "kmsledger/ciphertext/v2/" ‖ type, 32 bytes)
//	      type = "AES256" or "ChaCha20"
//	AES256:   XAES-256-GCM(K2, nonce 24)        = AES-256-GCM(KDF(K2, nonce[:12]), nonce[12:])
//	ChaCha20: XChaCha20-Poly1305(K2, nonce 24)  = ChaCha20-Poly1305(HChaCha20(K2, nonce[:16]), 0^4 ‖ nonce[16:])
//
// The header, and so the format byte and the key version, is authenticated:
// a format-0x02 ciphertext relabelled 0x01 (or moved to another version)
// fails. Format 0x01 ciphertexts keep decrypting with the version's
// original AEAD; every new ciphertext is format 0x02.
//
// References: C2SP XAES-256-GCM (https://c2sp.org/XAES-256-GCM);
// draft-irtf-cfrg-xchacha-03 (XChaCha20-Poly1305, HChaCha20); RFC 8439
// (ChaCha20-Poly1305); NIST SP 800-38D §8.3 (GCM invocation limit); NIST SP
// 800-108r1 (KDF in counter mode); NIST SP 800-38B (CMAC); RFC 5869 (HKDF).

package hsm

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/aead/xaesgcm"
	"github.com/tink-crypto/tink-go/v2/aead/xchacha20poly1305"
	"github.com/tink-crypto/tink-go/v2/insecuresecretdataaccess"
	"github.com/tink-crypto/tink-go/v2/key"
	"github.com/tink-crypto/tink-go/v2/secretdata"
	"github.com/tink-crypto/tink-go/v2/tink"
)

const (
	ctFormatV1  = 0x01 // Format 0x01: AES-256-GCM / ChaCha20-Poly1305, 96-bit nonce. Decrypt only.
	ctFormatV2  = 0x02 // Format 0x02: XAES-256-GCM / XChaCha20-Poly1305, 192-bit nonce.
	xNonceLen   = 24   // 192-bit nonces: XAES-256-GCM and XChaCha20-Poly1305.
	xaesSaltLen = 12   // Tink's salt size that makes xaesgcm exactly C2SP XAES-256-GCM.
	minCTLenV1  = headerLen + nonceLen + tagLen
	minCTLenV2  = headerLen + xNonceLen + tagLen
	v2KeyLabel  = "kmsledger/ciphertext/v2/" // ‖ key type; HKDF info for K2.
)

// CiphertextFormat is the format byte of every ciphertext Encrypt and
// GenerateDataKey produce, whatever the key version.
const CiphertextFormat = ctFormatV2

// CiphertextAEAD names the AEAD of format CiphertextFormat for a key type:
// "XAES-256-GCM" or "XChaCha20-Poly1305" ("" for an unknown type).
func CiphertextAEAD(kt KeyType) string {
	switch kt {
	case AES256:
		return "XAES-256-GCM"
	case ChaCha20:
		return "XChaCha20-Poly1305"
	}
	return ""
}

// newV2AEAD returns the format-0x02 AEAD of a version of type kt: XAES-256-GCM
// or XChaCha20-Poly1305 keyed with K2 = HKDF-SHA256(material, info label ‖ kt).
func newV2AEAD(kt KeyType, material []byte) (tink.AEAD, error) {
	if len(material) != materialLen {
		return nil, ErrInvalidKeyMaterial
	}
	k2, err := hkdf.Key(sha256.New, material, nil, v2KeyLabel+string(kt), materialLen)
	if err != nil {
		return nil, fmt.Errorf("hsm: derive format-2 key: %w", err)
	}
	defer clear(k2)
	sd := secretdata.NewBytesFromData(k2, insecuresecretdataaccess.Token{}) // copies k2
	var k key.Key
	switch kt {
	case AES256:
		p, err := xaesgcm.NewParameters(xaesgcm.VariantNoPrefix, xaesSaltLen)
		if err != nil {
			return nil, fmt.Errorf("hsm: XAES-256-GCM parameters: %w", err)
		}
		if k, err = xaesgcm.NewKey(sd, 0, p); err != nil {
			return nil, fmt.Errorf("hsm: XAES-256-GCM key: %w", err)
		}
	case ChaCha20:
		p, err := xchacha20poly1305.NewParameters(xchacha20poly1305.VariantNoPrefix)
		if err != nil {
			return nil, fmt.Errorf("hsm: XChaCha20-Poly1305 parameters: %w", err)
		}
		if k, err = xchacha20poly1305.NewKey(sd, 0, p); err != nil {
			return nil, fmt.Errorf("hsm: XChaCha20-Poly1305 key: %w", err)
		}
	default:
		return nil, fmt.Errorf("%w %q", ErrInvalidKeyType, kt)
	}
	h, err := newHandle(k)
	if err != nil {
		return nil, err
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("hsm: format-2 AEAD primitive: %w", err)
	}
	return a, nil
}
