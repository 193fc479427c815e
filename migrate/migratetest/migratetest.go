// Package migratetest writes KES key stores for tests: stored values in
// every format migrate.ParseKeyValue reads, and whole fs key stores. The
// keys are random test material; nothing here is for production use.
package migratetest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/migrate"
)

// variant is one way a KES release stored a key.
type variant struct {
	format, algorithm string
	kt                hsm.KeyType
	hmac              bool
}

// variants covers every stored-value format and algorithm label.
var variants = []variant{
	{migrate.FormatBytesJSON, "", hsm.AES256, false},
	{migrate.FormatJSON, "AES256-GCM_SHA256", hsm.AES256, false},
	{migrate.FormatJSON, "XCHACHA20-POLY1305", hsm.ChaCha20, false},
	{migrate.FormatJSONVersioned, "", hsm.AES256, false},
	{migrate.FormatJSONVersioned, "ChaCha20", hsm.ChaCha20, false},
	{migrate.FormatProtobuf, "AES256", hsm.AES256, true},
	{migrate.FormatProtobuf, "ChaCha20", hsm.ChaCha20, true},
	{migrate.FormatNameSecret, "", hsm.AES256, false},
}

// NumFormats is the number of distinct value variants WriteFSKeystore
// cycles through; n ≥ NumFormats covers them all.
const NumFormats = 8

// WriteFSKeystore writes n keys named key-00000, key-00001, … into dir (a
// KES fs key store: one file per key, mode 0600), cycling through every
// stored-value format, and returns them as ParseKeyValue must read them.
// Material, HMAC keys, creation times and creators come from rand.
func WriteFSKeystore(dir string, n int, rand io.Reader) ([]migrate.Key, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	keys := make([]migrate.Key, 0, n)
	for i := range n {
		var buf [32 + 32 + 32 + 4]byte
		if _, err := io.ReadFull(rand, buf[:]); err != nil {
			return nil, fmt.Errorf("migratetest: read randomness: %w", err)
		}
		v := variants[i%len(variants)]
		k := migrate.Key{
			Name:      fmt.Sprintf("key-%05d", i),
			Type:      v.kt,
			Material:  append([]byte(nil), buf[:32]...),
			Format:    v.format,
			Algorithm: v.algorithm,
		}
		if v.hmac {
			k.HMACKey = append([]byte(nil), buf[32:64]...)
		}
		if v.format != migrate.FormatBytesJSON && v.format != migrate.FormatNameSecret {
			nanos := int(binary.BigEndian.Uint32(buf[96:]) % 1e9)
			k.CreatedAt = base.Add(time.Duration(i) * time.Second).Add(time.Duration(nanos))
			k.CreatedBy = hex.EncodeToString(buf[64:96])
		}
		value, err := Value(k)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, k.Name), value, 0o600); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Value encodes k as KES stores it in k.Format (see migrate's Format
// constants), with k.Algorithm as the stored algorithm label.
func Value(k migrate.Key) ([]byte, error) {
	b64 := base64.StdEncoding.EncodeToString
	switch k.Format {
	case migrate.FormatNameSecret:
		return json.Marshal(struct {
			Name   string `json:"name"`
			Secret string `json:"secret"`
		}{k.Name, b64(k.Material)})
	case migrate.FormatBytesJSON:
		return json.Marshal(struct {
			Bytes string `json:"bytes"`
		}{b64(k.Material)})
	case migrate.FormatJSON, migrate.FormatJSONVersioned:
		v := struct {
			Version   string `json:"version,omitempty"`
			Bytes     string `json:"bytes"`
			Algorithm string `json:"algorithm,omitempty"`
			CreatedAt string `json:"created_at"`
			CreatedBy string `json:"created_by"`
		}{"", b64(k.Material), k.Algorithm, k.CreatedAt.UTC().Format(time.RFC3339Nano), k.CreatedBy}
		if k.Format == migrate.FormatJSONVersioned {
			v.Version = "v1"
		}
		return json.Marshal(v)
	case migrate.FormatProtobuf:
		pb, err := keyVersion(k)
		if err != nil {
			return nil, err
		}
		return []byte(b64(pb)), nil
	}
	return nil, fmt.Errorf("migratetest: unknown format %q", k.Format)
}

// keyVersion encodes the protobuf KeyVersion that KES stores (the
// protobuf format of migrate/value.go).
func keyVersion(k migrate.Key) ([]byte, error) {
	var typ uint64
	switch k.Type {
	case hsm.AES256:
		typ = 1
	case hsm.ChaCha20:
		typ = 2
	default:
		return nil, fmt.Errorf("migratetest: key type %q", k.Type)
	}
	pair := func(key []byte, kind uint64) []byte {
		m := protowire.AppendTag(nil, 1, protowire.BytesType)
		m = protowire.AppendBytes(m, key)
		m = protowire.AppendTag(m, 2, protowire.VarintType)
		return protowire.AppendVarint(m, kind)
	}
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, pair(k.Material, typ))
	if k.HMACKey != nil {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, pair(k.HMACKey, 1))
	}
	if !k.CreatedAt.IsZero() {
		var ts []byte
		if s := k.CreatedAt.Unix(); s != 0 {
			ts = protowire.AppendTag(ts, 1, protowire.VarintType)
			ts = protowire.AppendVarint(ts, uint64(s))
		}
		if ns := k.CreatedAt.Nanosecond(); ns != 0 {
			ts = protowire.AppendTag(ts, 2, protowire.VarintType)
			ts = protowire.AppendVarint(ts, uint64(ns))
		}
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, ts)
	}
	if k.CreatedBy != "" {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendString(b, k.CreatedBy)
	}
	return b, nil
}
