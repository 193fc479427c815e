// Wrap and Unwrap on the token: AES-256-GCM, or AES-KWP where the token
// lacks GCM.
//
// Summary: the key never leaves the token; this file only moves data in
// and out of it over a pooled session. AES-GCM (format 0x01) is used when
// the token and key allow it: a random 96-bit IV from crypto/rand, a
// 128-bit tag, and the format byte bound into the associated data, as in
// hsm/softkey. Otherwise AES key wrap with padding (format 0x02) seals a
// temporary session object (the "inner" bytes below). KWP has no
// associated data, so SHA-256(0x02 ‖ aad) binds aad and Unwrap checks it
// in constant time; KWP is deterministic, so a random 96-bit salt makes
// equal plaintexts wrap differently. Every bit of a KWP output depends on
// every input bit, and its integrity check plus the 256-bit hash reject a
// modified blob. The inner bytes carry their own length and are padded to
// a multiple of 8 bytes, because some tokens (SoftHSM2 2.6) return KWP
// unwraps with the RFC 5649 padding left on.
//
//	format 0x01: | 0x01 | IV 12 | AES-256-GCM ciphertext | tag 16 |
//	             GCM associated data = 0x01 ‖ aad
//	format 0x02: | 0x02 | AES-KWP(inner) |
//	inner:       | SHA-256(0x02 ‖ aad) 32 | salt 12 | u32BE len(pt) | pt | 0x00 × 0..7 |
//
// Unwrap follows the format byte of the blob, not the one Wrap would use;
// a format the key cannot open (say GCM for a wrap-only key) is ErrUnseal,
// since this key cannot have made it.
//
// References: NIST SP 800-38D (GCM); NIST SP 800-38F and RFC 5649 (KWP);
// PKCS#11 v2.40 §2.12 (CKM_AES_GCM), §2.14 (CKM_AES_KEY_WRAP_PAD).

package pkcs11

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	p11 "github.com/miekg/pkcs11"

	"github.com/kmsledger/kmsledger/hsm"
)

const (
	keyLen    = 32                        // AES-256.
	ivLen     = 12                        // GCM standard IV; random IVs are safe far beyond our volume.
	tagLen    = 16                        // Full-length GCM tag.
	saltLen   = 12                        // Makes KWP outputs of equal inputs distinct.
	kwpHead   = sha256.Size + saltLen + 4 // Digest, salt, length: 48 bytes.
	formatGCM = 0x01                      // First byte of an AES-GCM blob.
	formatKWP = 0x02                      // First byte of an AES-KWP blob.

	// ckrAEADDecryptFailed is CKR_AEAD_DECRYPT_FAILED of PKCS#11 v3.0,
	// which miekg/pkcs11 v1.1.2 does not define.
	ckrAEADDecryptFailed = 0x00000035
)

// Wrap seals plaintext bound to aad on the token. It fails with ErrClosed
// after Close, or with the token's error.
func (h *HSM) Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	var out []byte
	err := h.do(ctx, func(sh p11.SessionHandle) (err error) {
		if h.format == formatKWP {
			out, err = h.wrapKWP(sh, plaintext, aad)
		} else {
			out, err = h.wrapGCM(sh, plaintext, aad)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: wrap: %w", h.keyID, err)
	}
	return out, nil
}

// Unwrap reverses Wrap. A blob made by another key, modified, or bound to
// other aad fails with an error wrapping hsm.ErrUnseal; a failing token or
// a closed HSM gives other errors.
func (h *HSM) Unwrap(ctx context.Context, ciphertext, aad []byte) ([]byte, error) {
	var pt []byte
	var unseal bool
	err := h.do(ctx, func(sh p11.SessionHandle) (err error) {
		switch {
		case len(ciphertext) == 0 || !h.opens.has(ciphertext[0]):
			unseal = true // Not made by this key.
		case len(ciphertext) >= 1+ivLen+tagLen && ciphertext[0] == formatGCM:
			pt, unseal, err = h.unwrapGCM(sh, ciphertext, aad)
		case len(ciphertext) >= 1+kwpHead+8 && ciphertext[0] == formatKWP:
			pt, unseal, err = h.unwrapKWP(sh, ciphertext, aad)
		default:
			unseal = true
		}
		return err
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: unwrap: %w", h.keyID, err)
	case unseal:
		return nil, fmt.Errorf("pkcs11 %s: %w", h.keyID, hsm.ErrUnseal)
	}
	return pt, nil
}

// do runs op on a pooled session. A session that op may have broken is
// closed and reopened on next use.
func (h *HSM) do(ctx context.Context, op func(p11.SessionHandle) error) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return ErrClosed
	}
	var sh p11.SessionHandle
	select {
	case sh = <-h.pool:
	case <-ctx.Done():
		return ctx.Err()
	}
	if sh == 0 {
		var err error
		if sh, err = h.ctx.OpenSession(h.slot, p11.CKF_SERIAL_SESSION); err != nil {
			h.pool <- 0
			return fmt.Errorf("open session: %w", err)
		}
	}
	err := op(sh)
	if err != nil && sessionBroken(err) {
		h.ctx.CloseSession(sh) //nolint:errcheck // it is being discarded
		sh = 0
	}
	h.pool <- sh
	return err
}

func (h *HSM) wrapGCM(sh p11.SessionHandle, plaintext, aad []byte) ([]byte, error) {
	iv := make([]byte, ivLen)
	rand.Read(iv) // Never fails (crypto/rand, Go ≥ 1.24).
	params := p11.NewGCMParams(iv, gcmAD(aad), tagLen*8)
	defer params.Free()
	if err := h.ctx.EncryptInit(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_GCM, params)}, h.key); err != nil {
		return nil, fmt.Errorf("C_EncryptInit: %w", err)
	}
	ct, err := h.ctx.Encrypt(sh, plaintext)
	if err != nil {
		return nil, fmt.Errorf("C_Encrypt: %w", err)
	}
	if len(ct) != len(plaintext)+tagLen {
		return nil, fmt.Errorf("C_Encrypt returned %d bytes for %d, want %d more", len(ct), len(plaintext), tagLen)
	}
	if tokenIV := params.IV(); len(tokenIV) == ivLen {
		iv = tokenIV // Some tokens choose the IV themselves.
	}
	out := make([]byte, 0, 1+ivLen+len(ct))
	return append(append(append(out, formatGCM), iv...), ct...), nil
}

// unwrapGCM returns unseal set if the token rejected the blob itself.
func (h *HSM) unwrapGCM(sh p11.SessionHandle, blob, aad []byte) (pt []byte, unseal bool, err error) {
	params := p11.NewGCMParams(blob[1:1+ivLen], gcmAD(aad), tagLen*8)
	defer params.Free()
	if err := h.ctx.DecryptInit(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_GCM, params)}, h.key); err != nil {
		return nil, false, fmt.Errorf("C_DecryptInit: %w", err)
	}
	pt, err = h.ctx.Decrypt(sh, blob[1+ivLen:])
	if err != nil {
		if rejected(err) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("C_Decrypt: %w", err)
	}
	return pt, false, nil
}

func gcmAD(aad []byte) []byte { return append([]byte{formatGCM}, aad...) }

// kwpDigest returns SHA-256(0x02 ‖ aad), the head of a KWP-wrapped input.
func kwpDigest(aad []byte) []byte {
	d := sha256.Sum256(append([]byte{formatKWP}, aad...))
	return d[:]
}

func (h *HSM) wrapKWP(sh p11.SessionHandle, plaintext, aad []byte) ([]byte, error) {
	inner := make([]byte, kwpHead, kwpHead+len(plaintext)+7)
	copy(inner, kwpDigest(aad))
	rand.Read(inner[sha256.Size : sha256.Size+saltLen])
	binary.BigEndian.PutUint32(inner[sha256.Size+saltLen:], uint32(len(plaintext)))
	inner = append(inner, plaintext...)
	inner = append(inner, make([]byte, -len(inner)&7)...)
	defer clear(inner)
	obj, err := h.ctx.CreateObject(sh, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_GENERIC_SECRET),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
		p11.NewAttribute(p11.CKA_VALUE, inner),
	})
	if err != nil {
		return nil, fmt.Errorf("C_CreateObject: %w", err)
	}
	wrapped, err := h.ctx.WrapKey(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}, h.key, obj)
	if derr := h.ctx.DestroyObject(sh, obj); derr != nil && err == nil {
		return nil, fmt.Errorf("C_DestroyObject: %w", derr)
	}
	if err != nil {
		return nil, fmt.Errorf("C_WrapKey: %w", err)
	}
	return append([]byte{formatKWP}, wrapped...), nil
}

// unwrapKWP returns unseal set if the token rejected the blob or the
// associated data differs.
func (h *HSM) unwrapKWP(sh p11.SessionHandle, blob, aad []byte) (pt []byte, unseal bool, err error) {
	obj, err := h.ctx.UnwrapKey(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}, h.key, blob[1:],
		[]*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_GENERIC_SECRET),
			p11.NewAttribute(p11.CKA_TOKEN, false),
			p11.NewAttribute(p11.CKA_PRIVATE, true),
			p11.NewAttribute(p11.CKA_SENSITIVE, false),
			p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
		})
	if err != nil {
		if rejected(err) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("C_UnwrapKey: %w", err)
	}
	attrs, err := h.ctx.GetAttributeValue(sh, obj, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)})
	if derr := h.ctx.DestroyObject(sh, obj); derr != nil && err == nil {
		err = fmt.Errorf("C_DestroyObject: %w", derr)
	}
	if err != nil {
		return nil, false, fmt.Errorf("C_GetAttributeValue: %w", err)
	}
	inner := attrs[0].Value
	defer clear(inner)
	if len(inner) < kwpHead || subtle.ConstantTimeCompare(inner[:sha256.Size], kwpDigest(aad)) != 1 {
		return nil, true, nil
	}
	n := uint64(binary.BigEndian.Uint32(inner[sha256.Size+saltLen:]))
	rest := uint64(len(inner) - kwpHead)
	if n > rest || rest-n > 7 || !allZero(inner[kwpHead+n:]) {
		return nil, true, nil
	}
	return append([]byte(nil), inner[kwpHead:kwpHead+n]...), false, nil
}

// rejected reports whether a decrypt or unwrap error means the token
// refused the data (wrong key, modified blob or associated data) rather
// than failed. CKR_GENERAL_ERROR counts: SoftHSM2 returns it for a GCM tag
// or KWP integrity mismatch, and the key and session have already been
// shown to work (by C_DecryptInit, or by the self-test of Open).
func rejected(err error) bool {
	return !sessionBroken(err) || errors.Is(err, p11.Error(p11.CKR_GENERAL_ERROR))
}

func allZero(b []byte) bool {
	var or byte
	for _, c := range b {
		or |= c
	}
	return or == 0
}

// ulong decodes a CK_ULONG attribute value (native byte order).
func ulong(b []byte) (uint64, bool) {
	switch len(b) {
	case 8:
		return binary.NativeEndian.Uint64(b), true
	case 4:
		return uint64(binary.NativeEndian.Uint32(b)), true
	}
	return 0, false
}
