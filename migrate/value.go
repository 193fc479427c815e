// Stored key values: every format KES wrote into its key stores.
//
// The value is the same for every backend (the backend only wraps it). KES
// decides by content: valid JSON is one of the JSON formats, anything else
// is base64 of a protobuf KeyVersion (vectors in testdata/kes/):
//
//	Format          Writer                     Value
//	json-name-secret  v0.1.0–v0.4.0 (fs)       {"name":N,"secret":b64}
//	bytes-json      v0.4.1–v0.19.1             {"bytes":b64}
//	json            v0.19.2–v0.22.2            {"bytes","algorithm"?,"created_at","created_by"}
//	json-versioned  v0.22.3–v0.23.0 (Jan 2024) {"version":"v1","bytes","algorithm"?,"created_at","created_by"}
//	protobuf        Feb 2024 → HEAD            std base64(KeyVersion)
//
//	KeyVersion (package miniohq.kms), proto3:
//	  1 SecretKey { 1 bytes key (32), 2 uint32 type: 1 = AES256, 2 = ChaCha20 }
//	  2 HMACKey   { 1 bytes key (32), 2 uint32 hash: 1 = SHA-256 }
//	  3 google.protobuf.Timestamp { 1 int64 seconds, 2 int32 nanos } created_at
//	  4 string created_by
//
// A missing JSON algorithm means AES256 (v0.23.0) or a "generic" key whose
// ciphertexts name their own cipher (v0.19.2–v0.22.x); both become AES256,
// which is also how current KES reads them, and hsm picks the cipher of a
// labelled ciphertext from its label.

package migrate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/migrate/kescompat"
)

// Stored value formats, as recorded in Key.Format and in provenance.
const (
	FormatNameSecret    = "json-name-secret"
	FormatBytesJSON     = "bytes-json"
	FormatJSON          = "json"
	FormatJSONVersioned = "json-versioned"
	FormatProtobuf      = "protobuf"
)

const (
	keyLen  = 32 // Every KES key and HMAC key is 256 bits.
	maxSize = 1 << 20
)

var (
	// ErrKeyValue means a stored value is in no format KES ever wrote.
	ErrKeyValue = errors.New("migrate: invalid KES key value")
	// ErrKeySize means a stored key or HMAC key is not 32 bytes long.
	ErrKeySize = errors.New("migrate: KES key must be 32 bytes")
	// ErrUnknownAlgorithm means a stored value names a cipher or hash that
	// KES does not define.
	ErrUnknownAlgorithm = errors.New("migrate: unknown KES key algorithm")
)

// Key is one key read from a KES key store. Material and HMACKey are secret.
type Key struct {
	Name      string      // KES name, verbatim (see kescompat.KeyName).
	Type      hsm.KeyType // AES256 or ChaCha20.
	Material  []byte      // 32-byte master key.
	HMACKey   []byte      // 32-byte HMAC-SHA256 key; nil before protobuf-era KES.
	CreatedAt time.Time   // Zero if the format has none.
	CreatedBy string      // KES identity (hex SHA-256), "" if none.
	Format    string      // One of the Format constants.
	Algorithm string      // The stored algorithm label verbatim ("" if none).
}

// String describes k without its secrets.
func (k Key) String() string {
	return fmt.Sprintf("migrate.Key(%q %s %s hmac=%t)", k.Name, k.Type, k.Format, len(k.HMACKey) > 0)
}

// GoString is String, so %#v does not print secrets either.
func (k Key) GoString() string { return k.String() }

// LogValue implements slog.LogValuer without secrets.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", k.Name),
		slog.String("type", string(k.Type)),
		slog.String("format", k.Format),
		slog.Bool("hmac", len(k.HMACKey) > 0),
	)
}

// MarshalJSON always fails: a Key holds secrets and is never serialised.
func (k Key) MarshalJSON() ([]byte, error) {
	return nil, errors.New("migrate: Key holds secrets and cannot be marshalled")
}

// Clear zeroes the key material and the HMAC key.
func (k *Key) Clear() {
	clear(k.Material)
	clear(k.HMACKey)
}

// ParseKeyValue parses a value read from a KES key store under name. Errors
// name the key and wrap ErrKeyValue, ErrKeySize or ErrUnknownAlgorithm;
// they never contain key material.
func ParseKeyValue(name string, value []byte) (Key, error) {
	if len(value) > maxSize {
		return Key{}, fmt.Errorf("%w %q: %d bytes, more than KES's 1 MiB limit", ErrKeyValue, name, len(value))
	}
	var (
		k   Key
		err error
	)
	if trimmed := bytes.TrimSpace(value); len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed) {
		k, err = parseJSON(trimmed)
	} else {
		k, err = parseProtobufB64(trimmed)
	}
	if err != nil {
		return Key{}, fmt.Errorf("key %q: %w", name, err)
	}
	k.Name = name
	return k, nil
}

// jsonFields lists the fields each JSON era may hold; any other is an error.
var jsonFields = []string{"version", "bytes", "algorithm", "created_at", "created_by", "name", "secret"}

func parseJSON(b []byte) (Key, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrKeyValue, err)
	}
	str := make(map[string]string, len(m))
	for f, raw := range m {
		if !slices.Contains(jsonFields, f) {
			return Key{}, fmt.Errorf("%w: unexpected JSON field %q", ErrKeyValue, f)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Key{}, fmt.Errorf("%w: JSON field %q is not a string", ErrKeyValue, f)
		}
		str[f] = s
	}
	if _, ok := m["secret"]; ok {
		return parseNameSecret(str)
	}
	if _, ok := m["bytes"]; !ok {
		return Key{}, fmt.Errorf("%w: JSON without \"bytes\"", ErrKeyValue)
	}
	if _, ok := m["name"]; ok {
		return Key{}, fmt.Errorf("%w: JSON with both \"bytes\" and \"name\"", ErrKeyValue)
	}
	k := Key{Format: FormatJSON, Algorithm: str["algorithm"], CreatedBy: str["created_by"]}
	switch v, ok := str["version"]; {
	case !ok:
		if len(m) == 1 {
			k.Format = FormatBytesJSON
		}
	case v == "v1":
		k.Format = FormatJSONVersioned
	default:
		return Key{}, fmt.Errorf("%w: unknown JSON version %q", ErrKeyValue, v)
	}
	var err error
	if k.Type, err = parseAlgorithm(k.Algorithm); err != nil {
		return Key{}, err
	}
	if k.Material, err = decodeKey("bytes", str["bytes"]); err != nil {
		return Key{}, err
	}
	if s := str["created_at"]; s != "" {
		if k.CreatedAt, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return Key{}, fmt.Errorf("%w: created_at: %v", ErrKeyValue, err)
		}
	}
	return k, nil
}

// parseNameSecret reads the v0.1.0–v0.4.0 fs format {"name","secret"}.
func parseNameSecret(str map[string]string) (Key, error) {
	for f := range str {
		if f != "name" && f != "secret" {
			return Key{}, fmt.Errorf("%w: JSON with \"secret\" and %q", ErrKeyValue, f)
		}
	}
	mat, err := decodeKey("secret", str["secret"])
	if err != nil {
		return Key{}, err
	}
	return Key{Type: hsm.AES256, Material: mat, Format: FormatNameSecret}, nil
}

// parseAlgorithm maps every algorithm label KES stored to a key type.
func parseAlgorithm(s string) (hsm.KeyType, error) {
	typ, ok := kescompat.KeyType(s)
	if !ok {
		return "", fmt.Errorf("%w %q", ErrUnknownAlgorithm, s)
	}
	return hsm.KeyType(typ), nil
}

func decodeKey(field, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not base64", ErrKeyValue, field)
	}
	if len(b) != keyLen {
		clear(b)
		return nil, fmt.Errorf("%w: %s is %d bytes", ErrKeySize, field, len(b))
	}
	return b, nil
}

func parseProtobufB64(b []byte) (Key, error) {
	if len(b) == 0 {
		return Key{}, fmt.Errorf("%w: empty", ErrKeyValue)
	}
	pb := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	n, err := base64.StdEncoding.Decode(pb, b)
	if err != nil {
		clear(pb)
		return Key{}, fmt.Errorf("%w: neither JSON nor base64: %v", ErrKeyValue, err)
	}
	defer clear(pb)
	return parseKeyVersion(pb[:n])
}

func parseKeyVersion(b []byte) (Key, error) {
	k := Key{Format: FormatProtobuf}
	var secretType, hmacHash uint64
	var seconds, nanos int64
	var secret, hmacKey []byte
	err := walkProto(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			return walkProto(v, func(n protowire.Number, t protowire.Type, v []byte, x uint64) error {
				return setPair(n, t, v, x, &secret, &secretType, "secret key")
			})
		case num == 2 && typ == protowire.BytesType:
			return walkProto(v, func(n protowire.Number, t protowire.Type, v []byte, x uint64) error {
				return setPair(n, t, v, x, &hmacKey, &hmacHash, "HMAC key")
			})
		case num == 3 && typ == protowire.BytesType:
			return walkProto(v, func(n protowire.Number, t protowire.Type, _ []byte, x uint64) error {
				switch {
				case n == 1 && t == protowire.VarintType:
					seconds = int64(x)
				case n == 2 && t == protowire.VarintType:
					nanos = int64(int32(x))
				case n <= 2:
					return fmt.Errorf("%w: created_at field %d has wire type %d", ErrKeyValue, n, t)
				}
				return nil
			})
		case num == 4 && typ == protowire.BytesType:
			k.CreatedBy = string(v)
		case num <= 4:
			return fmt.Errorf("%w: protobuf field %d has wire type %d", ErrKeyValue, num, typ)
		}
		return nil // Unknown fields are skipped, as proto3 does.
	})
	if err != nil {
		return Key{}, err
	}
	switch secretType {
	case 1:
		k.Type, k.Algorithm = hsm.AES256, "AES256"
	case 2:
		k.Type, k.Algorithm = hsm.ChaCha20, "ChaCha20"
	default:
		return Key{}, fmt.Errorf("%w: protobuf secret key type %d", ErrUnknownAlgorithm, secretType)
	}
	if len(secret) != keyLen {
		return Key{}, fmt.Errorf("%w: protobuf secret key is %d bytes", ErrKeySize, len(secret))
	}
	if hmacKey != nil || hmacHash != 0 {
		if hmacHash != 1 {
			return Key{}, fmt.Errorf("%w: protobuf HMAC hash %d", ErrUnknownAlgorithm, hmacHash)
		}
		if len(hmacKey) != keyLen {
			return Key{}, fmt.Errorf("%w: protobuf HMAC key is %d bytes", ErrKeySize, len(hmacKey))
		}
		k.HMACKey = bytes.Clone(hmacKey)
	}
	if nanos < 0 || nanos > 999_999_999 {
		return Key{}, fmt.Errorf("%w: created_at nanos %d", ErrKeyValue, nanos)
	}
	if seconds != 0 || nanos != 0 {
		k.CreatedAt = time.Unix(seconds, nanos).UTC()
	}
	k.Material = bytes.Clone(secret)
	return k, nil
}

// setPair fills the {1 bytes key, 2 uint32 kind} messages SecretKey and HMACKey.
func setPair(n protowire.Number, t protowire.Type, v []byte, x uint64, key *[]byte, kind *uint64, what string) error {
	switch {
	case n == 1 && t == protowire.BytesType:
		*key = v
	case n == 2 && t == protowire.VarintType:
		*kind = uint64(uint32(x))
	case n <= 2:
		return fmt.Errorf("%w: %s field %d has wire type %d", ErrKeyValue, what, n, t)
	}
	return nil
}

// walkProto calls f for each field of a protobuf message: v holds the bytes
// of a length-delimited field, x the value of a varint field.
func walkProto(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: protobuf: %v", ErrKeyValue, protowire.ParseError(n))
		}
		b = b[n:]
		var (
			v []byte
			x uint64
		)
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: protobuf field %d: %v", ErrKeyValue, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}
