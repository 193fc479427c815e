// Ciphertexts and MACs in the layout of the Vault/OpenBao Transit API.
//
// Summary: the Transit adapter (api, README.md "Vault Transit API") hands
// clients ciphertexts "vault:v<N>:" ‖ base64(nonce ‖ ciphertext ‖ tag),
// the layout Transit clients store and send back. This file makes and
// opens the binary part; the adapter adds and parses the text around it.
// Every Transit ciphertext is sealed with the key version's own material,
// never with a key shared between versions, so "vault:vN" names the very
// version kmsledger tracks (rotation, disable, deletion apply unchanged).
//
//	TK  = HKDF-SHA256(secret = material, salt = none,
//	                  info = "kmsledger/transit/v1/" ‖ type, 32 bytes)
//	key = TK                                          (not derived)
//	key = HKDF-SHA256(secret = TK, salt = none, info = context, 32 bytes)
//	                                                  (derived keys: Transit's
//	                                                   key derivation, context
//	                                                   = the request's context)
//
//	 0          12                  len-16   len
//	+----------+-------------------+--------+
//	| nonce 12 | ciphertext        | tag 16 |   AES256:   AES-256-GCM(key)
//	+----------+-------------------+--------+   ChaCha20: ChaCha20-Poly1305(key)
//	AEAD associated data = the request's associated_data (may be empty)
//
//	HMAC = HMAC-<hash>(MAC key of the version, input): with sha2-256 the
//	       very MAC the kms API's MAC returns for the same version.
//
// TK keeps the Transit AEAD apart from the formats 0x01 and 0x02 (a GCM
// key used directly by format 0x01, a CMAC subkey derived from K2 by
// format 0x02): a Transit ciphertext never opens in another format.
//
// Limits, as in Vault: the nonce is 96 random bits, so one non-derived
// version should not seal more than 2^32 messages (NIST SP 800-38D §8.3);
// rotate before. A derived key has one AES key per context.
//
// References: NIST SP 800-38D (GCM); RFC 8439 (ChaCha20-Poly1305);
// RFC 5869 (HKDF); RFC 2104 (HMAC); FIPS 180-4, FIPS 202 (hashes).

package hsm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

const (
	transitLabel    = "kmsledger/transit/v1/" // ‖ key type; HKDF info of TK.
	transitNonceLen = 12
	transitTagLen   = 16
)

// Errors of the Transit functions. ErrDecrypt is returned when a
// ciphertext does not authenticate.
var (
	// ErrTransitLength: a Transit ciphertext shorter than a nonce and a tag.
	ErrTransitLength = errors.New("hsm: invalid ciphertext length")
	// ErrTransitContext: a derived key used without a context.
	ErrTransitContext = errors.New("hsm: missing context for key derivation")
	// ErrTransitHash: an HMAC algorithm Transit does not name.
	ErrTransitHash = errors.New("hsm: unsupported HMAC algorithm")
)

// TransitEncrypt seals plaintext in the Transit layout (nonce ‖
// ciphertext ‖ tag) bound to ad. derived says the key is a Transit derived
// key: the AEAD key is then derived from context, which must not be
// empty; otherwise context is ignored.
func (k *Key) TransitEncrypt(plaintext, context, ad []byte, derived bool) ([]byte, error) {
	a, err := k.transitAEAD(context, derived)
	if err != nil {
		return nil, err
	}
	out := make([]byte, transitNonceLen, transitNonceLen+len(plaintext)+transitTagLen)
	rand.Read(out) // Never fails (crypto/rand, Go ≥ 1.24).
	out = a.Seal(out, out, plaintext, ad)
	k.usage.encryptions.Add(1)
	return out, nil
}

// TransitDecrypt opens a ciphertext made by TransitEncrypt with the same
// version, context (derived keys) and ad. A body shorter than a nonce and
// a tag is ErrTransitLength; any other failure is ErrDecrypt.
func (k *Key) TransitDecrypt(body, context, ad []byte, derived bool) ([]byte, error) {
	if len(body) < transitNonceLen+transitTagLen {
		return nil, ErrTransitLength
	}
	a, err := k.transitAEAD(context, derived)
	if err != nil {
		return nil, err
	}
	pt, err := a.Open(nil, body[:transitNonceLen], body[transitNonceLen:], ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	k.usage.decryptions.Add(1)
	return pt, nil
}

// TransitHMAC returns the HMAC of msg under the version's MAC key with
// the Transit algorithm alg ("sha2-256", "sha2-224", "sha2-384",
// "sha2-512", "sha3-224", "sha3-256", "sha3-384", "sha3-512"); any other
// name is ErrTransitHash.
func (k *Key) TransitHMAC(alg string, msg []byte) ([]byte, error) {
	h, ok := transitHashes[alg]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrTransitHash, alg)
	}
	return k.hmac(h, msg), nil
}

// TransitHash returns the hash of msg with the Transit algorithm alg (as
// TransitHMAC); it uses no key.
func TransitHash(alg string, msg []byte) ([]byte, error) {
	h, ok := transitHashes[alg]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrTransitHash, alg)
	}
	d := h()
	d.Write(msg)
	return d.Sum(nil), nil
}

var transitHashes = map[string]func() hash.Hash{
	"sha2-224": sha256.New224,
	"sha2-256": sha256.New,
	"sha2-384": sha512.New384,
	"sha2-512": sha512.New,
	"sha3-224": func() hash.Hash { return sha3.New224() },
	"sha3-256": func() hash.Hash { return sha3.New256() },
	"sha3-384": func() hash.Hash { return sha3.New384() },
	"sha3-512": func() hash.Hash { return sha3.New512() },
}

// transitAEAD returns the AEAD of the version's Transit key, or of the key
// derived from context.
func (k *Key) transitAEAD(context []byte, derived bool) (cipher.AEAD, error) {
	if !derived {
		if a := k.transit.Load(); a != nil {
			return *a, nil
		}
	} else if len(context) == 0 {
		return nil, ErrTransitContext
	}
	tk, err := hkdf.Key(sha256.New, k.material[:], nil, transitLabel+string(k.Type()), materialLen)
	if err != nil {
		return nil, fmt.Errorf("hsm: derive transit key: %w", err)
	}
	defer clear(tk)
	if !derived {
		a, err := transitAEADOf(k.Type(), tk)
		if err == nil {
			k.transit.Store(&a)
		}
		return a, err
	}
	dk, err := transitDerive(tk, context)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	return transitAEADOf(k.Type(), dk)
}

// transitDerive is Transit's key derivation: HKDF-SHA256 of the key with
// the context as info and no salt, 32 bytes.
func transitDerive(key, context []byte) ([]byte, error) {
	dk, err := hkdf.Key(sha256.New, key, nil, string(context), materialLen)
	if err != nil {
		return nil, fmt.Errorf("hsm: derive transit key: %w", err)
	}
	return dk, nil
}

// transitAEADOf returns AES-256-GCM or ChaCha20-Poly1305 (96-bit nonces)
// under key, by key type.
func transitAEADOf(kt KeyType, key []byte) (cipher.AEAD, error) {
	switch kt {
	case AES256:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("hsm: transit AES key: %w", err)
		}
		return cipher.NewGCM(b)
	case ChaCha20:
		a, err := chacha20poly1305.New(key)
		if err != nil {
			return nil, fmt.Errorf("hsm: transit ChaCha20 key: %w", err)
		}
		return a, nil
	}
	return nil, fmt.Errorf("%w %q", ErrInvalidKeyType, kt)
}
