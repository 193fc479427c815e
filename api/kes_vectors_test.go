package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kesVector is one entry of testdata/kes/all-vectors.json (real KES output,
// see testdata/kes/README.md).
type kesVector struct {
	Producer   string `json:"producer"`
	KeyName    string `json:"key_name"`
	KeyFile    string `json:"key_file"`
	Operation  string `json:"operation"`
	Context    string `json:"context_b64"`
	Plaintext  string `json:"plaintext_hex"`
	Ciphertext string `json:"ciphertext_b64"`
	Format     string `json:"format"`
}

// TestKESVectorsDecrypt imports, through the KES API, the keys whose bytes
// the vectors document (imported-aes and every legacy imported-key:
// 00 01 … 1f; imported-chacha: 1f 1e … 00, type ChaCha20) and decrypts
// every ciphertext KES made with them — raw, msgpack and JSON envelopes —
// with its context. The v0.22.3-noaes vectors are ChaCha20-labelled under a
// key imported as AES256: the label, not the key type, picks the cipher.
func TestKESVectorsDecrypt(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "kes", "all-vectors.json"))
	mustOK(t, err)
	var vectors []kesVector
	mustOK(t, json.Unmarshal(b, &vectors))

	s := startStackKES(t)
	admin, _ := s.addIdentity("Admin", "")
	asc, desc := make([]byte, 32), make([]byte, 32)
	for i := range asc {
		asc[i], desc[i] = byte(i), byte(31-i)
	}
	imported := map[string]bool{}
	formats := map[string]int{}
	for _, v := range vectors {
		if !strings.Contains(v.KeyName, "imported") {
			continue // random key material: the migration tests cover those
		}
		if !imported[v.KeyName] {
			key, cipher := asc, "AES256"
			if v.KeyName == "imported-chacha" {
				key, cipher = desc, "ChaCha20"
			}
			admin.ok("POST", "/v1/key/import/"+v.KeyName, `{"key":"`+b64(key)+`","cipher":"`+cipher+`"}`, nil)
			imported[v.KeyName] = true
		}
		t.Run(v.KeyName+"/"+v.Operation+"/"+v.Format, func(t *testing.T) {
			ct, err := base64.StdEncoding.DecodeString(v.Ciphertext)
			mustOK(t, err)
			want, err := hex.DecodeString(v.Plaintext)
			mustOK(t, err)
			body := `{"ciphertext":"` + b64(ct) + `","context":"` + v.Context + `"}`
			var d struct{ Plaintext []byte }
			admin.on(t).ok("POST", "/v1/key/decrypt/"+v.KeyName, body, &d)
			if !bytes.Equal(d.Plaintext, want) {
				t.Fatalf("%s: plaintext %x, want %x", v.Producer, d.Plaintext, want)
			}
			if v.Context != "" {
				admin.on(t).fails("POST", "/v1/key/decrypt/"+v.KeyName, `{"ciphertext":"`+b64(ct)+`"}`,
					400, "decryption failed: ciphertext is not authentic")
			}
		})
		formats[v.Format]++
	}
	for _, f := range []string{"raw", "json", "msgpack"} {
		if formats[f] == 0 {
			t.Errorf("no %s vector was decrypted", f)
		}
	}
}
