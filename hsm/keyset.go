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
	"google.golang.org/protobuf/encoding/protowire"
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

// oneKeyKeyset returns the cleartext binary keyset holding material as
// its one, primary key of type kt (newTinkKey: with the TINK prefix and
// key id idRequirement, or neither): the REK's keyset, and a key
// version's in the keyset form. The caller seals it and clears it.
func oneKeyKeyset(kt KeyType, material []byte, tinkPrefix bool, idRequirement uint32) ([]byte, error) {
	k, err := newTinkKey(kt, material, tinkPrefix, idRequirement)
	if err != nil {
		return nil, err
	}
	h, err := newHandle(k)
	if err != nil {
		return nil, err
	}
	return marshalKeyset(h)
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

// Field numbers and values of Tink's protobufs (tink.proto, aes_gcm.proto,
// chacha20_poly1305.proto) that rawKeysetMaterial reads.
const (
	pbStatusEnabled = 1 // KeyStatusType ENABLED
	pbPrefixRaw     = 3 // OutputPrefixType RAW
	pbSymmetric     = 1 // KeyData.KeyMaterialType SYMMETRIC
	aesGCMTypeURL   = "type.googleapis.com/google.crypto.tink.AesGcmKey"
	chachaTypeURL   = "type.googleapis.com/google.crypto.tink.ChaCha20Poly1305Key"
	aesGCMKeyValue  = 3 // AesGcmKey.key_value
	chachaKeyValue  = 2 // ChaCha20Poly1305Key.key_value
	pbVersionField  = 1 // AesGcmKey.version, ChaCha20Poly1305Key.version: must be 0
)

// rawKeysetMaterial returns the material of a cleartext binary keyset that
// holds exactly one enabled, primary, RAW key of type kt with a 32-byte
// key_value and nothing else, the keysets key versions are sealed with:
//
//	Keyset{ 1: primary_key_id, 2: Key{ 1: KeyData{ 1: type_url, 2: value, 3: SYMMETRIC },
//	        2: ENABLED, 3: key_id = primary_key_id, 4: RAW } }
//	value = AesGcmKey{ 1: version 0, 3: key_value } | ChaCha20Poly1305Key{ 1: version 0, 2: key_value }
//
// It reads the protobuf fields in place, without Tink's generic parse, and
// returns a slice of b. ok is false for anything else (unknown or repeated
// fields, other values): the caller then parses with Tink (parseKeyset).
func rawKeysetMaterial(b []byte, kt KeyType) (material []byte, ok bool) {
	url, kvField := aesGCMTypeURL, protowire.Number(aesGCMKeyValue)
	switch kt {
	case AES256:
	case ChaCha20:
		url, kvField = chachaTypeURL, chachaKeyValue
	default:
		return nil, false
	}
	var primary, keyID uint64
	var key, data, value []byte
	ok = pbFields(b, map[protowire.Number]pbField{
		1: {v: &primary},
		2: {b: &key, required: true},
	}) && pbFields(key, map[protowire.Number]pbField{
		1: {b: &data, required: true},
		2: {want: pbStatusEnabled},
		3: {v: &keyID},
		4: {want: pbPrefixRaw},
	}) && keyID == primary && pbFields(data, map[protowire.Number]pbField{
		1: {s: url},
		2: {b: &value, required: true},
		3: {want: pbSymmetric},
	}) && pbFields(value, map[protowire.Number]pbField{
		pbVersionField: {zero: true},
		kvField:        {b: &material, required: true},
	})
	if !ok || len(material) != materialLen {
		return nil, false
	}
	return material, true
}

// pbField says what rawKeysetMaterial accepts in one protobuf field: bytes
// (stored in *b), a varint stored in *v, a varint equal to want, a
// varint 0 (zero), or the string s.
type pbField struct {
	b        *[]byte
	v        *uint64
	want     uint64
	zero     bool
	s        string
	required bool
}

// pbFields reads the fields of message m into spec. It fails on a field
// number spec does not name, a field seen twice, a wrong wire type or
// value, a malformed message, or a missing field: every field is
// required, except those of varints and of the zero flag (proto3 omits
// zero values).
func pbFields(m []byte, spec map[protowire.Number]pbField) bool {
	seen := 0
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return false
		}
		m = m[n:]
		f, known := spec[num]
		if !known || num > 8 || seen&(1<<num) != 0 {
			return false
		}
		seen |= 1 << num
		switch {
		case typ == protowire.BytesType && (f.b != nil || f.s != ""):
			p, n := protowire.ConsumeBytes(m)
			if n < 0 || (f.s != "" && string(p) != f.s) {
				return false
			}
			if f.b != nil {
				*f.b = p
			}
			m = m[n:]
		case typ == protowire.VarintType && f.b == nil && f.s == "":
			v, n := protowire.ConsumeVarint(m)
			switch {
			case n < 0, f.zero && v != 0, f.v == nil && !f.zero && v != f.want:
				return false
			}
			if f.v != nil {
				*f.v = v
			}
			m = m[n:]
		default:
			return false
		}
	}
	for num, f := range spec {
		if seen&(1<<num) == 0 && (f.required || f.s != "" || (f.want != 0 && f.v == nil)) {
			return false
		}
	}
	return true
}
