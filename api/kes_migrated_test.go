package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/migrate"
)

// TestKESMigratedKeys imports every key file of the KES vectors the way the
// migration does (parsed stored value → commands.ImportKey with provenance
// and the stored HMAC key) and checks through the KES API that every
// vector decrypts with its context, that the spec's HMAC vector reproduces,
// and that describe reports what KES recorded.
func TestKESMigratedKeys(t *testing.T) {
	dir := filepath.Join("..", "testdata", "kes")
	b, err := os.ReadFile(filepath.Join(dir, "all-vectors.json"))
	mustOK(t, err)
	var vectors []kesVector
	mustOK(t, json.Unmarshal(b, &vectors))

	s := startStackKES(t)
	admin, _ := s.addIdentity("Admin", "")
	keys := map[string]migrate.Key{}
	for _, v := range vectors {
		if _, ok := keys[v.KeyName]; ok {
			continue
		}
		value, err := os.ReadFile(filepath.Join(dir, v.KeyFile))
		mustOK(t, err)
		k, err := migrate.ParseKeyValue(v.KeyName, value)
		mustOK(t, err)
		t.Cleanup(k.Clear)
		keys[v.KeyName] = k
		src := &ledger.ImportSource{Kind: "kes-fs", Location: dir, Name: v.KeyName, CreatedBy: k.CreatedBy, Format: k.Format}
		if !k.CreatedAt.IsZero() {
			src.CreatedAt = k.CreatedAt.Format(time.RFC3339Nano)
		}
		_, err = s.Handler.Execute(ctx, s.RootID, "", commands.ImportKey{
			Enclave: kesEnclave, Name: v.KeyName, Type: string(k.Type), Material: k.Material, HMACKey: k.HMACKey, Source: src,
		})
		mustOK(t, err)
	}

	for _, v := range vectors {
		t.Run(v.KeyName+"/"+v.Operation+"/"+v.Format, func(t *testing.T) {
			ct, err := base64.StdEncoding.DecodeString(v.Ciphertext)
			mustOK(t, err)
			want, err := hex.DecodeString(v.Plaintext)
			mustOK(t, err)
			var d struct{ Plaintext []byte }
			admin.on(t).ok("POST", "/v1/key/decrypt/"+v.KeyName, `{"ciphertext":"`+b64(ct)+`","context":"`+v.Context+`"}`, &d)
			if !bytes.Equal(d.Plaintext, want) {
				t.Fatalf("%s: plaintext %x, want %x", v.Producer, d.Plaintext, want)
			}
		})
	}

	// spec/kes-vectors/README.md: HMAC of "message" under minio-default-key.
	var h struct{ HMAC []byte }
	admin.ok("PUT", "/v1/key/hmac/minio-default-key", `{"message":"`+b64([]byte("message"))+`"}`, &h)
	if got, want := hex.EncodeToString(h.HMAC), "82ff2f9e89eeffbf380dbc47c11a6169555e4c66e050e3db846b64428936653e"; got != want {
		t.Fatalf("hmac(minio-default-key, message) = %s, want %s (the HMAC key KES stored)", got, want)
	}

	// Describe reports KES's own creation metadata for migrated keys.
	for name, k := range keys {
		if k.CreatedAt.IsZero() {
			continue
		}
		var info struct {
			CreatedAt time.Time `json:"created_at"`
			CreatedBy string    `json:"created_by"`
		}
		admin.ok("GET", "/v1/key/describe/"+name, "", &info)
		if !info.CreatedAt.Equal(k.CreatedAt) || info.CreatedBy != k.CreatedBy {
			t.Errorf("describe(%s) = %v by %q, want KES's %v by %q", name, info.CreatedAt, info.CreatedBy, k.CreatedAt, k.CreatedBy)
		}
	}
}
