// Tink keyset plumbing shared by the REK and key versions.
//
// Summary: 32 bytes of material become a one-key Tink keyset (AES-256-GCM or
// ChaCha20-Poly1305). The keyset is serialised as a cleartext binary
// google.crypto.tink.Keyset protobuf only to be sealed at once; the bytes
// are cleared after use. Generated and imported material take the same
// path, so both give the same kind of keyset.
//
// Keyset as serialised (Tink's protobuf, abridged):
//
//	Keyset{ primary_key_id,
//	        key[0] = { KeyData{ type_url, value = AesGcmKey|ChaCha20Poly1305Key{ key_value: 32 B } },
//	                   status ENABLED, key_id, output_prefix_type RAW|TINK } }
//
// References: Tink keyset and wire format
// (https://developers.google.com/tink/wire-format); AES-GCM: NIST SP 800-38D;
// ChaCha20-Poly1305: RFC 8439.

package hsm

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/aead/aesgcm"
	"github.com/tink-crypto/tink-go/v2/aead/chacha20poly1305"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/insecuresecretdataaccess"
	"github.com/tink-crypto/tink-go/v2/key"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/secretdata"
	"github.com/tink-crypto/tink-go/v2/tink"
)

const (
	materialLen = 32 // AES-256 and ChaCha20 both take 256-bit keys.
	nonceLen    = 12 // 96-bit nonces: the GCM and RFC 8439 default.
	tagLen      = 16 // Full 128-bit tags; shorter GCM tags weaken forgery bounds.
)

// errKeyset reports an authentic sealed blob whose keyset is not one this
// package writes. It indicates a bug or a newer format, not tampering.
var errKeyset = errors.New("hsm: unexpected keyset")

// newTinkKey turns 32 bytes of material into a Tink key of type kt, with
// the TINK output prefix (the REK; idRequirement is its key ID) or none (key
// versions; idRequirement must be 0).
func newTinkKey(kt KeyType, material []byte, tinkPrefix bool, idRequirement uint32) (key.Key, error) {
	if len(material) != materialLen {
		return nil, ErrInvalidKeyMaterial
	}
	sd := secretdata.NewBytesFromData(material, insecuresecretdataaccess.Token{})
	switch kt {
	case AES256:
		variant := aesgcm.VariantNoPrefix
		if tinkPrefix {
			variant = aesgcm.VariantTink
		}
		p, err := aesgcm.NewParameters(aesgcm.ParametersOpts{
			KeySizeInBytes: materialLen,
			IVSizeInBytes:  nonceLen,
			TagSizeInBytes: tagLen,
			Variant:        variant,
		})
		if err != nil {
			return nil, fmt.Errorf("hsm: AES-GCM parameters: %w", err)
		}
		return aesgcm.NewKey(sd, idRequirement, p)
	case ChaCha20:
		variant := chacha20poly1305.VariantNoPrefix
		if tinkPrefix {
			variant = chacha20poly1305.VariantTink
		}
		p, err := chacha20poly1305.NewParameters(variant)
		if err != nil {
			return nil, fmt.Errorf("hsm: ChaCha20-Poly1305 parameters: %w", err)
		}
		return chacha20poly1305.NewKey(sd, idRequirement, p)
	}
	return nil, fmt.Errorf("%w %q", ErrInvalidKeyType, kt)
}

// newHandle returns a keyset holding k as its only, primary key.
func newHandle(k key.Key) (*keyset.Handle, error) {
	m := keyset.NewManager()
	id, err := m.AddKey(k)
	if err != nil {
		return nil, fmt.Errorf("hsm: add key to keyset: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return nil, fmt.Errorf("hsm: set primary key: %w", err)
	}
	return m.Handle()
}

// marshalKeyset returns the cleartext binary keyset. Callers must seal it
// and clear the returned bytes.
func marshalKeyset(h *keyset.Handle) ([]byte, error) {
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewBinaryWriter(&buf)); err != nil {
		return nil, fmt.Errorf("hsm: serialise keyset: %w", err)
	}
	return buf.Bytes(), nil
}

// openKeyset parses a cleartext binary keyset that must hold exactly one
// 32-byte key of type kt with the given prefix kind, and returns its AEAD
// primitive and a copy of the material.
func openKeyset(b []byte, kt KeyType, tinkPrefix bool) (tink.AEAD, []byte, error) {
	h, material, err := parseKeyset(b, kt, tinkPrefix)
	if err != nil {
		return nil, nil, err
	}
	a, err := aead.New(h)
	if err != nil {
		clear(material)
		return nil, nil, fmt.Errorf("hsm: AEAD primitive: %w", err)
	}
	return a, material, nil
}

// parseKeyset is openKeyset without the AEAD primitive: the keyset's
// handle and a copy of its material.
func parseKeyset(b []byte, kt KeyType, tinkPrefix bool) (*keyset.Handle, []byte, error) {
	h, err := insecurecleartextkeyset.Read(keyset.NewBinaryReader(bytes.NewReader(b)))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errKeyset, err)
	}
	if h.Len() != 1 {
		return nil, nil, fmt.Errorf("%w: %d keys, want 1", errKeyset, h.Len())
	}
	e, err := h.Primary()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errKeyset, err)
	}
	var (
		sd      secretdata.Bytes
		gotType KeyType
		prefix  bool
	)
	switch k := e.Key().(type) {
	case *aesgcm.Key:
		p := k.Parameters().(*aesgcm.Parameters)
		if p.IVSizeInBytes() != nonceLen || p.TagSizeInBytes() != tagLen {
			return nil, nil, fmt.Errorf("%w: AES-GCM nonce/tag size", errKeyset)
		}
		sd, gotType, prefix = k.KeyBytes(), AES256, p.Variant() == aesgcm.VariantTink
	case *chacha20poly1305.Key:
		p := k.Parameters().(*chacha20poly1305.Parameters)
		sd, gotType, prefix = k.KeyBytes(), ChaCha20, p.Variant() == chacha20poly1305.VariantTink
	default:
		return nil, nil, fmt.Errorf("%w: key is %T", errKeyset, k)
	}
	if gotType != kt || prefix != tinkPrefix || sd.Len() != materialLen {
		return nil, nil, fmt.Errorf("%w: got %s (prefix %v, %d bytes), want %s", errKeyset, gotType, prefix, sd.Len(), kt)
	}
	return h, sd.Data(insecuresecretdataaccess.Token{}), nil
}
