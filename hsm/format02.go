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
// Both are implemented here from their specifications on the standard
// library's AES-GCM and x/crypto's XChaCha20-Poly1305 (the Tink primitives
// of the same names, aead/xaesgcm with a 12-byte salt and
// aead/xchacha20poly1305 in RAW output, give the very same bytes). A version
// keeps only K2 (32 bytes, so that a million unsealed versions fit in the
// key cache); the expansion of K2 and its CMAC subkey come from a small
// table of the REK when the version was used recently, else are made again
// (k2blocks.go); a message then costs two AES blocks for its key, one
// AES-256-GCM key schedule, and a few small allocations.
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
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

const (
	ctFormatV1 = 0x01 // Format 0x01: AES-256-GCM / ChaCha20-Poly1305, 96-bit nonce. Decrypt only.
	ctFormatV2 = 0x02 // Format 0x02: XAES-256-GCM / XChaCha20-Poly1305, 192-bit nonce.
	xNonceLen  = 24   // 192-bit nonces: XAES-256-GCM and XChaCha20-Poly1305.
	minCTLenV1 = headerLen + nonceLen + tagLen
	minCTLenV2 = headerLen + xNonceLen + tagLen
	v2KeyLabel = "kmsledger/ciphertext/v2/" // ‖ key type; HKDF info for K2.
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

// errV2Short is the error of a format-0x02 body too short for its nonce
// and tag.
var errV2Short = errors.New("hsm: format-2 ciphertext too short")

// deriveV2Key sets k2 to K2 = HKDF-SHA256(material, info label ‖ kt), the
// key of a version's format-0x02 AEAD.
func deriveV2Key(k2 *[materialLen]byte, kt KeyType, material []byte) error {
	if len(material) != materialLen {
		return ErrInvalidKeyMaterial
	}
	b, err := hkdf.Key(sha256.New, material, nil, v2KeyLabel+string(kt), materialLen)
	if err != nil {
		return fmt.Errorf("hsm: derive format-2 key: %w", err)
	}
	copy(k2[:], b)
	clear(b)
	return nil
}

// v2Seal draws a fresh 24-byte nonce and appends nonce ‖ ciphertext ‖ tag
// of pt, bound to aad, to dst (in place when dst has room): XAES-256-GCM
// or XChaCha20-Poly1305 under k's K2.
func v2Seal(k *Key, dst, pt, aad []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, xNonceLen)...)
	nonce := dst[n : n+xNonceLen]
	rand.Read(nonce) // never fails (crypto/rand, Go ≥ 1.24)
	if k.kind == typeChaCha20 {
		return xchachaOf(&k.k2).Seal(dst, nonce, pt, aad)
	}
	return xaesGCM(k.xaesKey(), nonce).Seal(dst, nonce[12:], pt, aad)
}

// v2Open authenticates and decrypts body (nonce ‖ ciphertext ‖ tag) bound
// to aad under k's K2 and appends the plaintext to dst.
func v2Open(k *Key, dst, body, aad []byte) ([]byte, error) {
	if len(body) < xNonceLen+tagLen {
		return nil, errV2Short
	}
	if k.kind == typeChaCha20 {
		return xchachaOf(&k.k2).Open(dst, body[:xNonceLen], body[xNonceLen:], aad)
	}
	return xaesGCM(k.xaesKey(), body[:xNonceLen]).Open(dst, body[12:xNonceLen], body[xNonceLen:], aad)
}

// xaesGCM returns AES-256-GCM under the per-message key of XAES-256-GCM
// (c2sp.org/XAES-256-GCM) with key K = K2 and nonce N (24 bytes):
//
//	L  = AES-256_K(0^128), K1 = L·x in GF(2^128)   (the CMAC subkey; k2blocks.go)
//	Kx = AES-256_K(00 01 'X' 00 ‖ N[:12] ⊕ K1) ‖ AES-256_K(00 02 'X' 00 ‖ N[:12] ⊕ K1)
//	ciphertext = AES-256-GCM(Kx, nonce N[12:])
//
// which is AES-CMAC-KDF in counter mode over one full block per half key.
func xaesGCM(x *k2Block, nonce []byte) cipher.AEAD {
	var m [48]byte // two KDF input blocks, then Kx
	for i, c := range [2]byte{1, 2} {
		blk := m[16*i : 16*i+16]
		blk[0], blk[1], blk[2], blk[3] = 0, c, 'X', 0
		copy(blk[4:], nonce[:12])
		for j := range blk {
			blk[j] ^= x.k1[j]
		}
	}
	x.b.Encrypt(m[32:48], m[16:32]) // second block first: its input is overwritten by the first's output
	x.b.Encrypt(m[16:32], m[0:16])
	defer clear(m[:])
	xb, err := aes.NewCipher(m[16:48])
	if err != nil {
		panic("hsm: XAES-256-GCM: " + err.Error()) // a 32-byte key cannot fail
	}
	g, err := cipher.NewGCM(xb)
	if err != nil {
		panic("hsm: XAES-256-GCM: " + err.Error()) // the standard nonce and tag sizes cannot fail
	}
	return g
}

// xchachaOf returns XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) under k.
func xchachaOf(k *[materialLen]byte) cipher.AEAD {
	a, err := chacha20poly1305.NewX(k[:]) // copies k
	if err != nil {
		panic("hsm: XChaCha20-Poly1305: " + err.Error()) // a 32-byte key cannot fail
	}
	return a
}
