// Data-plane cryptography with an unsealed key version.
//
// Summary: Encrypt seals client data in format 0x02 (format02.go:
// XAES-256-GCM or XChaCha20-Poly1305, random 192-bit nonce, safe for
// unlimited messages per version) and prefixes a 6-byte header that names
// the format and the key version, because MinIO stores only the key name
// and the ciphertext and always decrypts with version 0 (README.md,
// "Ciphertext format"). The header is part of the AEAD associated data, so changing the
// format or version field (or anything else) makes decryption fail. Decrypt
// also opens format 0x01 (below; written by earlier releases, still
// accepted), then falls back to KES's JSON and msgpack envelopes (kes.go)
// and to MinIO's built-in KMS / KES raw format (legacy.go) for ciphertexts
// not in our format. Every decrypt failure is ErrDecrypt, with no further
// detail. A Key counts its successful encryptions and decryptions (Usage).
//
// Ciphertext (format 0x01, decrypt only: AES-256-GCM or ChaCha20-Poly1305
// under the material itself, random 96-bit nonce):
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
// RFC 5869 (HKDF); RFC 2104 (HMAC); the key types and ciphertexts of the
// kms API (README.md, "Ciphertext format").

package hsm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"log/slog"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

const (
	ctMagic    = 'K' // 0x4B: first byte of every kmsledger ciphertext.
	headerLen  = 6   // magic ‖ format ‖ uint32 key version.
	macLabel   = "kmsledger/mac/v1"
	macKeyLen  = 32
	maxDataKey = 1024 // the largest GenerateKeyRequest.Length the kms API accepts.
	minDataKey = 1
)

// MaxDataKeyLength is the largest data key GenerateDataKey produces.
const MaxDataKeyLength = maxDataKey

// Key is an unsealed key version. It is safe for concurrent use. Its raw
// material never leaves the package; String and LogValue redact it.
//
// A Key is what the key cache keeps for every version in use, so it holds
// only 32-byte secrets and makes its ciphers per call (an AES key schedule
// costs about as much as the per-message key of format 0x02 already does):
// the material, the format-0x02 key K2 derived from it once (format02.go),
// and, for a key imported from KES, its HMAC key. The format-0x01 AEAD,
// the MAC key and the fingerprint are derived from the material when used;
// the expansion of K2 is kept in a small table of the REK (k2blocks.go).
type Key struct {
	// First cache line: what every format-0x02 call reads.
	k2      [materialLen]byte // format 0x02: K2 = HKDF(material, "kmsledger/ciphertext/v2/" ‖ type)
	version uint32
	kind    byte                        // typeAES256 or typeChaCha20 (version.go)
	hmacKey *[macKeyLen]byte            // the HMAC key imported from KES; nil: derived from the material
	transit atomic.Pointer[cipher.AEAD] // The Transit AEAD under TK (transit.go), made on first use.
	blocks  *k2Blocks                   // the REK's table of expanded K2s (k2blocks.go); nil: none

	// Second cache line: the counters every call writes, so that the
	// writes do not evict the line above from the other cores.
	material [materialLen]byte // formats 0x01, KES/MinIO, Transit, the MAC key and the fingerprint derive from it
	usage    usageCounters
}

// usageCounters are a Key's atomic use counts since it was opened.
type usageCounters struct {
	encryptions    atomic.Uint64
	decryptions    atomic.Uint64
	oldDecryptions atomic.Uint64
}

// Usage counts what a Key did since it was opened (normally: since the
// node started or the version was first used). Only successful operations
// count.
type Usage struct {
	// Encryptions counts ciphertexts produced (Encrypt, GenerateDataKey).
	Encryptions uint64
	// Decryptions counts ciphertexts opened, in any format.
	Decryptions uint64
	// OldFormatDecryptions counts the Decryptions of ciphertexts not in
	// the current format (0x01, KES and MinIO formats): while it grows,
	// old ciphertexts are still in use.
	OldFormatDecryptions uint64
}

// newKey builds a Key from 32 bytes of material (copied); hmacKey nil
// means derive the MAC key when it is used.
func newKey(version uint32, kt KeyType, material []byte, hmacKey *[macKeyLen]byte, blocks *k2Blocks) (*Key, error) {
	kind, err := typeByte(kt)
	if err != nil {
		return nil, err
	}
	if len(material) != materialLen {
		return nil, ErrInvalidKeyMaterial
	}
	k := &Key{version: version, kind: kind, hmacKey: hmacKey, blocks: blocks}
	copy(k.material[:], material)
	if err := deriveV2Key(&k.k2, kt, material); err != nil {
		return nil, err
	}
	return k, nil
}

// Usage returns the Key's use counts since it was opened.
func (k *Key) Usage() Usage {
	return Usage{
		Encryptions:          k.usage.encryptions.Load(),
		Decryptions:          k.usage.decryptions.Load(),
		OldFormatDecryptions: k.usage.oldDecryptions.Load(),
	}
}

// Version returns the key version number written into ciphertexts.
func (k *Key) Version() uint32 { return k.version }

// Type returns the key's cipher.
func (k *Key) Type() KeyType {
	if k.kind == typeChaCha20 {
		return ChaCha20
	}
	return AES256
}

// Fingerprint returns hex(HMAC-SHA256(material, "kmsledger/fingerprint/v1")):
// equal material gives equal fingerprints; the material is not revealed.
func (k *Key) Fingerprint() string { return fingerprintOf(k.material[:]) }

// String returns a description without secrets.
func (k *Key) String() string {
	return fmt.Sprintf("hsm.Key(v%d %s fp=%.16s)", k.version, k.Type(), k.Fingerprint())
}

// LogValue implements slog.LogValuer without secrets.
func (k *Key) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Uint64("version", uint64(k.version)),
		slog.String("type", string(k.Type())),
		slog.String("fingerprint", k.Fingerprint()),
	)
}

// Encrypt encrypts plaintext bound to ad and returns a self-describing
// format-0x02 ciphertext (header ‖ nonce 24 ‖ ciphertext ‖ tag) that names
// this version.
func (k *Key) Encrypt(plaintext, ad []byte) ([]byte, error) {
	// One allocation: the ciphertext, followed by the AEAD's associated
	// data (header ‖ ad, public) beyond the returned slice's capacity.
	n := headerLen + xNonceLen + len(plaintext) + tagLen
	buf := make([]byte, n+headerLen+len(ad))
	h := buf[:headerLen:n]
	h[0], h[1] = ctMagic, ctFormatV2
	binary.BigEndian.PutUint32(h[2:], k.version)
	aad := buf[n:]
	copy(aad, h)
	copy(aad[headerLen:], ad)
	ct := v2Seal(k, h, plaintext, aad)
	k.usage.encryptions.Add(1)
	return ct[:n:n], nil
}

// Decrypt decrypts a ciphertext made by Encrypt (or GenerateDataKey) with
// this version and the same ad, in format 0x02 or 0x01. A ciphertext not in
// our format is tried as a KES JSON envelope, a KES msgpack envelope, then
// MinIO's built-in KMS / KES raw format (kes.go). Every failure returns
// ErrDecrypt.
func (k *Key) Decrypt(ciphertext, ad []byte) ([]byte, error) {
	if v, ok := CiphertextVersion(ciphertext); ok && v == k.version {
		h := ciphertext[:headerLen:headerLen]
		var pt []byte
		var err error
		if h[1] == ctFormatV2 {
			pt, err = v2Open(k, nil, ciphertext[headerLen:], append(h, ad...))
		} else {
			pt, err = k.openV1(ciphertext[headerLen:], append(h, ad...))
		}
		if err == nil {
			k.usage.decryptions.Add(1)
			if h[1] != CiphertextFormat {
				k.usage.oldDecryptions.Add(1)
			}
			return pt, nil
		}
	}
	if pt, ok := k.decryptKES(ciphertext, ad); ok {
		k.usage.decryptions.Add(1)
		k.usage.oldDecryptions.Add(1)
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
	return k.hmac(sha256.New, msg)
}

// hmac returns HMAC-h(msg) under the version's MAC key: the imported one,
// or HKDF-SHA256(material, "kmsledger/mac/v1"), derived for this call.
func (k *Key) hmac(h func() hash.Hash, msg []byte) []byte {
	var key []byte
	if k.hmacKey != nil {
		key = k.hmacKey[:]
	} else {
		var err error
		if key, err = hkdf.Key(sha256.New, k.material[:], nil, macLabel, macKeyLen); err != nil {
			panic("hsm: derive MAC key: " + err.Error()) // HKDF of 32 bytes cannot fail
		}
		defer clear(key)
	}
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}

// openV1 opens the body (nonce 12 ‖ ciphertext ‖ tag 16) of a format-0x01
// ciphertext: AES-256-GCM or ChaCha20-Poly1305 under the material, the
// RAW output of the Tink primitive that wrote it.
func (k *Key) openV1(body, aad []byte) ([]byte, error) {
	if len(body) < nonceLen+tagLen {
		return nil, ErrDecrypt
	}
	var a cipher.AEAD
	var err error
	if k.kind == typeChaCha20 {
		a, err = chacha20poly1305.New(k.material[:])
	} else {
		var b cipher.Block
		if b, err = aes.NewCipher(k.material[:]); err == nil {
			a, err = cipher.NewGCM(b)
		}
	}
	if err != nil {
		return nil, err
	}
	return a.Open(nil, body[:nonceLen], body[nonceLen:], aad)
}

// CiphertextVersion reads the key version from a ciphertext's header, in
// format 0x01 or 0x02. ok is false if ct is not in our format (wrong magic
// or format byte, or too short to hold the format's header, nonce and tag);
// it does not authenticate anything.
func CiphertextVersion(ct []byte) (version uint32, ok bool) {
	if len(ct) < minCTLenV1 || ct[0] != ctMagic {
		return 0, false
	}
	switch ct[1] {
	case ctFormatV1:
	case ctFormatV2:
		if len(ct) < minCTLenV2 {
			return 0, false
		}
	default:
		return 0, false
	}
	return binary.BigEndian.Uint32(ct[2:headerLen]), true
}
