package api_test

import (
	"bytes"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/migrate/kescompat"
)

// TestKESLegacyKeyNames: a key an older KES store held under a name
// kmsledger cannot carry is imported under kescompat.KeyName(name); KES
// clients still reach it under the old name, but cannot create new keys
// with such names.
func TestKESLegacyKeyNames(t *testing.T) {
	s := startStackKES(t)
	admin, _ := s.addIdentity("Admin", "")
	for _, old := range []string{"my.key", "tenant:a@b", strings.Repeat("x.", 60), "minio default key"} {
		t.Run(old, func(t *testing.T) {
			mapped, err := kescompat.KeyName(old)
			mustOK(t, err)
			key := make([]byte, 32)
			rand.Read(key)
			_, err = s.Handler.Execute(ctx, s.RootID, "", commands.ImportKey{Enclave: kesEnclave, Name: mapped, Type: "AES256", Material: key,
				Source: &ledger.ImportSource{Kind: "kes-fs", Name: old}})
			mustOK(t, err)

			c := admin.on(t)
			path := url.PathEscape(old)
			context := []byte(`{"bucket":"bucket/object"}`)
			raw := kesRawCiphertext(t, key, []byte("data key"), context)
			var d struct{ Plaintext []byte }
			c.ok("POST", "/v1/key/decrypt/"+path, `{"ciphertext":"`+b64(raw)+`","context":"`+b64(context)+`"}`, &d)
			if !bytes.Equal(d.Plaintext, []byte("data key")) {
				t.Fatalf("decrypt under the old name = %q", d.Plaintext)
			}
			var info struct{ Name string }
			c.ok("GET", "/v1/key/describe/"+path, "", &info)
			if info.Name != mapped {
				t.Fatalf("describe(%q).name = %q, want %q", old, info.Name, mapped)
			}
			c.ok("POST", "/v1/key/generate/"+path, "", nil)
			c.fails("POST", "/v1/key/create/"+path, "", 400, "key name '"+old+"' is empty, too long or contains invalid characters")
		})
	}
}
