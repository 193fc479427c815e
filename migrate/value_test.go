package migrate_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/migrate"
	"github.com/kmsledger/kmsledger/migrate/migratetest"
)

// vectorsDir holds key stores written by real KES releases (README.md there).
const vectorsDir = "../testdata/kes"

const (
	adminID = "2cb2f9a360a05426aa1dd3426d1cd3c9f98fc520a8d55a191e7329bd64481114"
	minioID = "54cd2e2f0410061385ce7dda7fcd46f95c1f93c53eab4fe03225f6f20153fff9"
)

func material0to31() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func material31to0() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(31 - i)
	}
	return b
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// TestParseKESVectorKeystores parses every key file written by real KES
// releases and checks format, type, algorithm, metadata and, where the
// secret bytes are known, the material.
func TestParseKESVectorKeystores(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, format, alg string
		kt                hsm.KeyType
		createdAt, by     string
		material          []byte // nil: random, only the length is checked
		hmac              bool
	}{
		{"current/fs-keystore/created-with-put", migrate.FormatProtobuf, "AES256", hsm.AES256, "2026-11-22T09:50:28.376241787Z", adminID, nil, true},
		{"current/fs-keystore/imported-aes", migrate.FormatProtobuf, "AES256", hsm.AES256, "2026-11-22T09:50:28.361096061Z", adminID, material0to31(), true},
		{"current/fs-keystore/imported-chacha", migrate.FormatProtobuf, "ChaCha20", hsm.ChaCha20, "2026-11-22T09:50:28.362286459Z", adminID, material31to0(), true},
		{"current/fs-keystore/minio-default-key", migrate.FormatProtobuf, "AES256", hsm.AES256, "2026-11-22T09:50:28.358327008Z", minioID, nil, true},
		{"current/fs-keystore/predefined-key", migrate.FormatProtobuf, "AES256", hsm.AES256, "2026-11-22T09:50:02.526423071Z", adminID, nil, true},
		{"legacy/v0.19.1-aes/fs-keystore/created-key", migrate.FormatBytesJSON, "", hsm.AES256, "", "", nil, false},
		{"legacy/v0.19.1-aes/fs-keystore/imported-key", migrate.FormatBytesJSON, "", hsm.AES256, "", "", material0to31(), false},
		{"legacy/v0.22.3-noaes/fs-keystore/created-key", migrate.FormatJSONVersioned, "XCHACHA20-POLY1305", hsm.ChaCha20, "2026-11-22T09:53:59.863385335Z", adminID, nil, false},
		{"legacy/v0.22.3-noaes/fs-keystore/imported-key", migrate.FormatJSONVersioned, "", hsm.AES256, "2026-11-22T09:53:59.864943809Z", adminID, material0to31(), false},
		{"legacy/v0.23.0-aes/fs-keystore/created-key", migrate.FormatJSONVersioned, "", hsm.AES256, "2026-11-22T09:53:44.401115688Z", adminID, nil, false},
		{"legacy/v0.23.0-aes/fs-keystore/imported-key", migrate.FormatJSONVersioned, "", hsm.AES256, "2026-11-22T09:53:44.403533409Z", adminID, material0to31(), false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			value, err := os.ReadFile(filepath.Join(vectorsDir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Base(tt.file)
			k, err := migrate.ParseKeyValue(name, value)
			if err != nil {
				t.Fatalf("ParseKeyValue err = %v, want nil", err)
			}
			var wantAt time.Time
			if tt.createdAt != "" {
				wantAt = mustTime(t, tt.createdAt)
			}
			if k.Name != name || k.Format != tt.format || k.Algorithm != tt.alg || k.Type != tt.kt || !k.CreatedAt.Equal(wantAt) || k.CreatedBy != tt.by {
				t.Errorf("ParseKeyValue = %q %s %q %s %v %q, want %q %s %q %s %v %q",
					k.Name, k.Format, k.Algorithm, k.Type, k.CreatedAt, k.CreatedBy, name, tt.format, tt.alg, tt.kt, wantAt, tt.by)
			}
			if len(k.Material) != 32 || (tt.material != nil && !bytes.Equal(k.Material, tt.material)) {
				t.Errorf("Material has %d bytes or differs from the known test key", len(k.Material))
			}
			if tt.hmac != (len(k.HMACKey) == 32) || (!tt.hmac && k.HMACKey != nil) {
				t.Errorf("HMACKey has %d bytes, want hmac=%v", len(k.HMACKey), tt.hmac)
			}
		})
	}
}

// TestParseHMACVector reproduces the KES /v1/key/hmac vector of
// testdata/kes/README.md with the HMAC key read from the key file.
func TestParseHMACVector(t *testing.T) {
	t.Parallel()
	const want = "82ff2f9e89eeffbf380dbc47c11a6169555e4c66e050e3db846b64428936653e"
	value, err := os.ReadFile(filepath.Join(vectorsDir, "current/fs-keystore/minio-default-key"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := migrate.ParseKeyValue("minio-default-key", value)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, k.HMACKey)
	m.Write([]byte("message"))
	if got := hex.EncodeToString(m.Sum(nil)); got != want {
		t.Errorf("HMAC-SHA256(HMACKey, message) = %s, want %s", got, want)
	}
}

// TestParseGenerated parses a key store with every format and algorithm
// label, written by migratetest, and gets back exactly what was written.
func TestParseGenerated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	want, err := migratetest.WriteFSKeystore(dir, 3*migratetest.NumFormats, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	formats := map[string]bool{}
	for _, w := range want {
		value, err := os.ReadFile(filepath.Join(dir, w.Name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := migrate.ParseKeyValue(w.Name, value)
		if err != nil {
			t.Fatalf("ParseKeyValue(%s, %s) err = %v", w.Name, w.Format, err)
		}
		formats[got.Format+"/"+got.Algorithm] = true
		if !sameKey(got, w) {
			t.Errorf("ParseKeyValue(%s) = %v, want %v (or the secrets differ)", w.Name, got, w)
		}
	}
	if len(formats) != migratetest.NumFormats {
		t.Errorf("generated %d format/algorithm variants, want %d: %v", len(formats), migratetest.NumFormats, formats)
	}
}

func sameKey(a, b migrate.Key) bool {
	return a.Name == b.Name && a.Type == b.Type && bytes.Equal(a.Material, b.Material) &&
		bytes.Equal(a.HMACKey, b.HMACKey) && a.CreatedAt.Equal(b.CreatedAt) && a.CreatedBy == b.CreatedBy &&
		a.Format == b.Format && a.Algorithm == b.Algorithm
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// protoValue builds a base64 KeyVersion from raw protowire fields.
func protoValue(fields ...[]byte) []byte {
	var b []byte
	for _, f := range fields {
		b = append(b, f...)
	}
	return []byte(b64(b))
}

func msgField(num protowire.Number, inner []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), inner)
}

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func pair(key []byte, kind uint64) []byte {
	return append(msgField(1, key), varintField(2, kind)...)
}

func TestParseKeyValueErrors(t *testing.T) {
	t.Parallel()
	k32, k16 := b64(material0to31()), b64(material0to31()[:16])
	tests := []struct {
		name  string
		value string
		want  error
		msg   string // must appear in the error text
	}{
		{"Empty", "", migrate.ErrKeyValue, "empty"},
		{"Garbage", "not a key", migrate.ErrKeyValue, "neither JSON nor base64"},
		{"ShortBytes", `{"bytes":"` + k16 + `"}`, migrate.ErrKeySize, "16 bytes"},
		{"LongBytes", `{"bytes":"` + b64(make([]byte, 33)) + `"}`, migrate.ErrKeySize, "33 bytes"},
		{"BytesNotBase64", `{"bytes":"***"}`, migrate.ErrKeyValue, "not base64"},
		{"BytesNotString", `{"bytes":5}`, migrate.ErrKeyValue, "not a string"},
		{"NoBytes", `{"algorithm":"AES256"}`, migrate.ErrKeyValue, `without "bytes"`},
		{"UnknownAlgorithm", `{"bytes":"` + k32 + `","algorithm":"AES128"}`, migrate.ErrUnknownAlgorithm, `"AES128"`},
		{"LowercaseAlgorithm", `{"bytes":"` + k32 + `","algorithm":"aes256"}`, migrate.ErrUnknownAlgorithm, `"aes256"`},
		{"UnknownVersion", `{"version":"v2","bytes":"` + k32 + `"}`, migrate.ErrKeyValue, `version "v2"`},
		{"UnknownField", `{"bytes":"` + k32 + `","kms":"x"}`, migrate.ErrKeyValue, `"kms"`},
		{"BadCreatedAt", `{"bytes":"` + k32 + `","created_at":"yesterday"}`, migrate.ErrKeyValue, "created_at"},
		{"SecretWithBytes", `{"name":"k","secret":"` + k32 + `","bytes":"` + k32 + `"}`, migrate.ErrKeyValue, `"secret" and "bytes"`},
		{"ShortSecret", `{"name":"k","secret":"` + k16 + `"}`, migrate.ErrKeySize, "16 bytes"},
		{"JSONArray", `["` + k32 + `"]`, migrate.ErrKeyValue, "neither JSON nor base64"},
		{"ProtoShortKey", string(protoValue(msgField(1, pair(material0to31()[:31], 1)))), migrate.ErrKeySize, "31 bytes"},
		{"ProtoNoType", string(protoValue(msgField(1, msgField(1, material0to31())))), migrate.ErrUnknownAlgorithm, "type 0"},
		{"ProtoUnknownType", string(protoValue(msgField(1, pair(material0to31(), 3)))), migrate.ErrUnknownAlgorithm, "type 3"},
		{"ProtoUnknownHash", string(protoValue(msgField(1, pair(material0to31(), 1)), msgField(2, pair(material0to31(), 2)))), migrate.ErrUnknownAlgorithm, "hash 2"},
		{"ProtoShortHMAC", string(protoValue(msgField(1, pair(material0to31(), 1)), msgField(2, pair(material0to31()[:8], 1)))), migrate.ErrKeySize, "HMAC key is 8 bytes"},
		{"ProtoWrongWireType", string(protoValue(varintField(1, 7))), migrate.ErrKeyValue, "wire type"},
		{"ProtoTruncated", b64([]byte{0x0a, 0x24, 0x0a}), migrate.ErrKeyValue, "protobuf"},
		{"ProtoBadNanos", string(protoValue(msgField(1, pair(material0to31(), 1)), msgField(3, varintField(2, 1e9)))), migrate.ErrKeyValue, "nanos"},
		{"TooLarge", `{"bytes":"` + k32 + `"}` + strings.Repeat(" ", 1<<20), migrate.ErrKeyValue, "1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := migrate.ParseKeyValue("bad-key", []byte(tt.value))
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), `"bad-key"`) {
				t.Fatalf("ParseKeyValue err = %v, want %v naming the key and mentioning %q", err, tt.want, tt.msg)
			}
			if k.Material != nil || k.Name != "" {
				t.Errorf("ParseKeyValue returned a key with its error")
			}
			if strings.Contains(err.Error(), k32) {
				t.Errorf("error %q contains key material", err)
			}
		})
	}
}

// TestParseKeyValueAccepted covers formats and encodings the KES fixtures
// lack: the unversioned JSON era, v0.1–v0.4 name/secret files, proto3
// unknown fields, surrounding whitespace.
func TestParseKeyValueAccepted(t *testing.T) {
	t.Parallel()
	k32 := b64(material0to31())
	pb := []byte{}
	pb = append(pb, msgField(1, pair(material0to31(), 2))...)
	pb = append(pb, varintField(9, 1)...) // An unknown field.
	pb = append(pb, msgField(3, append(varintField(1, 1700000000), varintField(2, 5)...))...)
	tests := []struct {
		name, value, format, alg string
		kt                       hsm.KeyType
		at                       time.Time
		by                       string
	}{
		{"JSONEra", `{"bytes":"` + k32 + `","algorithm":"XCHACHA20-POLY1305","created_at":"2022-05-01T10:00:00Z","created_by":"abc"}`,
			migrate.FormatJSON, "XCHACHA20-POLY1305", hsm.ChaCha20, time.Date(2022, 5, 1, 10, 0, 0, 0, time.UTC), "abc"},
		{"JSONGeneric", `{"bytes":"` + k32 + `","created_at":"2022-05-01T10:00:00Z","created_by":"abc"}`,
			migrate.FormatJSON, "", hsm.AES256, time.Date(2022, 5, 1, 10, 0, 0, 0, time.UTC), "abc"},
		{"Versioned", `{"version":"v1","bytes":"` + k32 + `","algorithm":"AES256"}`, migrate.FormatJSONVersioned, "AES256", hsm.AES256, time.Time{}, ""},
		{"NameSecret", `{"name":"k","secret":"` + k32 + `"}`, migrate.FormatNameSecret, "", hsm.AES256, time.Time{}, ""},
		{"Whitespace", "\n  {\"bytes\":\"" + k32 + "\"}\n", migrate.FormatBytesJSON, "", hsm.AES256, time.Time{}, ""},
		{"ProtoUnknownField", b64(pb) + "\n", migrate.FormatProtobuf, "ChaCha20", hsm.ChaCha20, time.Unix(1700000000, 5), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := migrate.ParseKeyValue("k", []byte(tt.value))
			if err != nil {
				t.Fatalf("ParseKeyValue err = %v, want nil", err)
			}
			if k.Format != tt.format || k.Algorithm != tt.alg || k.Type != tt.kt || !k.CreatedAt.Equal(tt.at) || k.CreatedBy != tt.by || !bytes.Equal(k.Material, material0to31()) || k.HMACKey != nil {
				t.Errorf("ParseKeyValue = %v %q %v %q, want %s %q %s %v %q", k, k.Algorithm, k.CreatedAt, k.CreatedBy, tt.format, tt.alg, tt.kt, tt.at, tt.by)
			}
		})
	}
}

// TestKeyRedacted checks that formatting, logging and marshalling a Key
// never reveal its material or HMAC key, and that Clear zeroes them.
func TestKeyRedacted(t *testing.T) {
	t.Parallel()
	k := migrate.Key{Name: "k", Type: hsm.AES256, Material: bytes.Repeat([]byte{0xAB}, 32), HMACKey: bytes.Repeat([]byte{0xCD}, 32), Format: migrate.FormatProtobuf}
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("key", "k", k)
	outs := []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), logBuf.String()}
	if _, err := json.Marshal(k); err == nil {
		t.Errorf("json.Marshal(Key) err = nil, want an error")
	}
	for _, out := range outs {
		for _, secret := range []string{"abab", "ABAB", "cdcd", "CDCD", "171, 171", "q6ur", "zc3N"} {
			if strings.Contains(out, secret) {
				t.Errorf("output %q contains secret bytes (%s)", out, secret)
			}
		}
	}
	k.Clear()
	if !bytes.Equal(k.Material, make([]byte, 32)) || !bytes.Equal(k.HMACKey, make([]byte, 32)) {
		t.Errorf("Clear left secret bytes")
	}
}

// FuzzParseKeyValue checks that the parser never panics and that anything
// it accepts satisfies the package invariants and survives re-encoding.
func FuzzParseKeyValue(f *testing.F) {
	for _, dir := range []string{"current", "legacy/v0.19.1-aes", "legacy/v0.22.3-noaes", "legacy/v0.23.0-aes"} {
		entries, _ := os.ReadDir(filepath.Join(vectorsDir, dir, "fs-keystore"))
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(vectorsDir, dir, "fs-keystore", e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`{"name":"k","secret":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}`))
	f.Add([]byte(`{"bytes":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","algorithm":"AES256-GCM_SHA256","created_at":"2022-05-01T10:00:00Z","created_by":"x"}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, value []byte) {
		k, err := migrate.ParseKeyValue("fuzz", value)
		if err != nil {
			if k.Material != nil {
				t.Fatalf("ParseKeyValue returned material with err %v", err)
			}
			return
		}
		if len(k.Material) != 32 || (k.HMACKey != nil && len(k.HMACKey) != 32) || (k.Type != hsm.AES256 && k.Type != hsm.ChaCha20) || k.Name != "fuzz" {
			t.Fatalf("ParseKeyValue(%q) = %v with %d-byte material: invariant broken", value, k, len(k.Material))
		}
		if k.CreatedAt.Before(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)) {
			return // Not representable in RFC 3339; nothing to re-encode.
		}
		again, err := migratetest.Value(k)
		if err != nil {
			t.Fatalf("re-encode %v: %v", k, err)
		}
		k2, err := migrate.ParseKeyValue("fuzz", again)
		if err != nil || !sameKey(k, k2) {
			t.Fatalf("re-encoded %v parses as %v, %v", k, k2, err)
		}
	})
}
