// Root Encryption Key: sealing under the HSM, and REK sealing of secrets.
//
// Summary: the REK is a one-key Tink AES-256-GCM keyset with the TINK output
// prefix (so a later REK rotation can hold several keys). NewREK draws its 32
// bytes of material and its Tink key ID from the injected randomness, then
// has the HSM Wrapper seal the cleartext keyset. Only the sealed form is ever
// stored (in the ledger at initialisation). Everything sealed under the REK
// is bound to a domain byte plus the caller's associated data, so blobs of
// one purpose (key versions) cannot be opened as another (Seal/Unseal).
//
// Sealed REK:
//
//	+------+-----------------------------------------------------------+
//	| 0x01 | Wrapper.Wrap(keyset, aad = "kmsledger/rek/v1")            |
//	+------+-----------------------------------------------------------+
//	 format  backend-specific bytes (softkey: 0x01 ‖ nonce12 ‖ ct ‖ tag16)
//
// REK ciphertext (REK.Seal and sealed key versions), Tink AEAD, TINK prefix:
//
//	+------+------------------+----------+---------------+--------+
//	| 0x01 | Tink key ID (4B) | nonce 12 | ciphertext    | tag 16 |
//	+------+------------------+----------+---------------+--------+
//	AEAD associated data = domain byte ('S' Seal, 'V' key version) ‖ aad
//
// References: NIST SP 800-38D (GCM); Tink wire format, output prefix
// (https://developers.google.com/tink/wire-format#tink_output_prefix).

package hsm

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/tink-crypto/tink-go/v2/tink"
)

const (
	sealedREKFormat = 0x01               // First byte of a sealed REK.
	rekAAD          = "kmsledger/rek/v1" // Binds the sealed REK to its purpose.
	domainSeal      = 'S'                // REK.Seal / REK.Unseal blobs.
	domainVersion   = 'V'                // Sealed key versions.
)

// REK is the unsealed Root Encryption Key. It is safe for concurrent use.
// Its methods return ErrUnseal when a sealed blob is not authentic under it.
type REK struct {
	aead tink.AEAD
	ks   []byte // the serialized keyset, kept only to seal it under more HSMs (SealFor)
	// blocks holds the expansions of the format-0x02 keys of the versions
	// used last (k2blocks.go).
	blocks *k2Blocks
	// compact: key versions are sealed in the compact form
	// (CompactVersions, version.go).
	compact bool
}

// NewREK creates a fresh REK from rand (normally crypto/rand.Reader) and
// returns it with its sealed form, which the caller stores.
func NewREK(ctx context.Context, w Wrapper, rand io.Reader) (rek *REK, sealed []byte, err error) {
	var seed [materialLen + 4]byte
	defer clear(seed[:])
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, nil, fmt.Errorf("hsm: new REK: read randomness: %w", err)
	}
	ks, err := oneKeyKeyset(AES256, seed[:materialLen], true, binary.BigEndian.Uint32(seed[materialLen:]))
	if err != nil {
		return nil, nil, fmt.Errorf("hsm: new REK: %w", err)
	}
	defer clear(ks)
	wrapped, err := w.Wrap(ctx, ks, []byte(rekAAD))
	if err != nil {
		return nil, nil, fmt.Errorf("hsm: new REK: wrap with %s: %w", w.KeyID(), err)
	}
	rek, err = openREKKeyset(ks)
	if err != nil {
		return nil, nil, err
	}
	return rek, append([]byte{sealedREKFormat}, wrapped...), nil
}

// SealFor seals this REK under another HSM, so that w alone can open it
// later (OpenREK). Used when an HSM is added to a running node.
func (r *REK) SealFor(ctx context.Context, w Wrapper) ([]byte, error) {
	wrapped, err := w.Wrap(ctx, r.ks, []byte(rekAAD))
	if err != nil {
		return nil, fmt.Errorf("hsm: seal REK with %s: %w", w.KeyID(), err)
	}
	return append([]byte{sealedREKFormat}, wrapped...), nil
}

// OpenREK unseals a REK sealed by NewREK. It returns an error wrapping
// ErrUnseal if w holds another key or sealed was modified; errors of the
// backend itself (unreachable HSM, cancelled ctx) are passed through.
func OpenREK(ctx context.Context, w Wrapper, sealed []byte) (*REK, error) {
	if len(sealed) < 1 || sealed[0] != sealedREKFormat {
		return nil, fmt.Errorf("hsm: open REK: unknown sealed format: %w", ErrUnseal)
	}
	ks, err := w.Unwrap(ctx, sealed[1:], []byte(rekAAD))
	if err != nil {
		return nil, fmt.Errorf("hsm: open REK with %s: %w", w.KeyID(), err)
	}
	defer clear(ks)
	return openREKKeyset(ks)
}

func openREKKeyset(ks []byte) (*REK, error) {
	a, material, err := openKeyset(ks, AES256, true)
	if err != nil {
		return nil, fmt.Errorf("hsm: REK keyset: %w", err)
	}
	clear(material)
	return &REK{aead: a, ks: bytes.Clone(ks), blocks: newK2Blocks()}, nil
}

// Seal encrypts a small secret (a signing key, say) under the REK, bound to
// aad. Blobs from Seal can only be opened by Unseal with the same aad.
func (r *REK) Seal(plaintext, aad []byte) ([]byte, error) {
	return r.seal(domainSeal, plaintext, aad)
}

// Unseal opens a blob made by Seal and returns the plaintext secret, so it
// requires a SecretAccess from InsecureSecretAccess (a zero one is refused
// with an error that is not ErrUnseal). It returns an error wrapping ErrUnseal if the blob was
// sealed under another REK, modified, or aad differs.
func (r *REK) Unseal(ct, aad []byte, access SecretAccess) ([]byte, error) {
	if !access.granted {
		return nil, errNoSecretAccess
	}
	return r.unseal(domainSeal, ct, aad)
}

func (r *REK) seal(domain byte, plaintext, aad []byte) ([]byte, error) {
	ct, err := r.aead.Encrypt(plaintext, domainAD(domain, aad))
	if err != nil {
		return nil, fmt.Errorf("hsm: REK seal: %w", err)
	}
	return ct, nil
}

func (r *REK) unseal(domain byte, ct, aad []byte) ([]byte, error) {
	pt, err := r.aead.Decrypt(ct, domainAD(domain, aad))
	if err != nil {
		return nil, ErrUnseal // Tink's error says nothing more useful.
	}
	return pt, nil
}

func domainAD(domain byte, aad []byte) []byte {
	return append([]byte{domain}, aad...)
}

// String returns a redacted description; the REK is never printed.
func (r *REK) String() string { return "hsm.REK(redacted)" }
