package api_test

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/ledger"
)

// Same keys, every protocol: a key made over Transit is a kmsledger key
// for the kms API, and a key made over the kms API serves Transit.
func TestTransitSameKeys(t *testing.T) {
	s := newTransitStack(t)
	s.call(t, "POST", "/v1/transit/keys/from-transit", s.RootKey, map[string]any{"type": "chacha20-poly1305"}).want(t, 200, "")
	st, err := s.root.KeyStatus(ctx, "minio", "from-transit", 0)
	mustOK(t, err)
	if st.Type != "ChaCha20" || st.Version != 1 {
		t.Fatalf("kms KeyStatus = %+v, want ChaCha20 v1", st)
	}
	g, err := s.root.GenerateKey(ctx, "minio", "from-transit", 0, nil, 0)
	mustOK(t, err)
	d, err := s.root.Decrypt(ctx, "minio", "from-transit", 0, g.Ciphertext, nil)
	mustOK(t, err)
	if string(d.Plaintext) != string(g.Plaintext) {
		t.Fatal("kms round trip on a Transit key failed")
	}

	mustOK(t, s.root.CreateKey(ctx, "minio", "from-kms", "AES256", false))
	mustOK(t, s.root.CreateKey(ctx, "minio", "from-kms", "", true)) // v2
	r := s.call(t, "GET", "/v1/transit/keys/from-kms", s.RootKey, nil).want(t, 200, "")
	if r.Data["latest_version"] != 2.0 || r.Data["type"] != "aes256-gcm96" || r.Data["derived"] != false {
		t.Fatalf("Transit read of a kms key = %v", r.Data)
	}
	ct := s.call(t, "PUT", "/v1/transit/encrypt/from-kms", s.RootKey, map[string]any{"plaintext": b64s("x")}).want(t, 200, "").str(t, "ciphertext")
	if !strings.HasPrefix(ct, "vault:v2:") {
		t.Fatalf("ciphertext %s, want vault:v2:", ct)
	}
	// Destroying the version over the kms API makes its Transit
	// ciphertexts undecryptable (sops: "fails after the key version is
	// destroyed").
	mustOK(t, s.root.DeleteKey(ctx, "minio", "from-kms", 2, false))
	s.call(t, "PUT", "/v1/transit/decrypt/from-kms", s.RootKey, map[string]any{"ciphertext": ct}).want(t, 400, "no such key version")
}

// Every Transit call is in the AUDIT stream with the token's identity and
// the mount's enclave; no record holds a plaintext or the token.
func TestTransitAudit(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{Audit: &ledger.AuditConfig{Sync: true}, Configure: func(c *api.Config) {
		c.TransitMounts = map[string]string{"transit": "minio"}
	}})
	s := &transitStack{stack: fromNode(t, n)}
	s.root = s.client("")
	mustOK(t, s.root.CreateEnclave(ctx, "minio"))
	s.http = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: n.Roots}}}
	user := s.userWith(t, "minio", "KEY:ENCRYPT")
	secret := "cGxhaW50ZXh0LW5ldmVyLWxvZ2dlZA=="
	s.call(t, "POST", "/v1/transit/keys/k", s.RootKey, nil).want(t, 200, "")
	s.call(t, "PUT", "/v1/transit/encrypt/k", user, map[string]any{"plaintext": secret}).want(t, 200, "")
	s.call(t, "PUT", "/v1/transit/decrypt/k", user, map[string]any{"ciphertext": "vault:v1:AAAA"}).want(t, 403, "")

	a := &auditStack{stack: s.stack}
	var enc, denied *ledger.AuditRecord
	for _, rec := range a.records(t) {
		raw := rec.Path + rec.Error + rec.Identity
		if strings.Contains(raw, secret) || strings.Contains(raw, user) || strings.Contains(raw, s.RootKey) {
			t.Fatalf("audit record holds a secret: %+v", rec)
		}
		switch rec.Path {
		case "/v1/transit/encrypt/k":
			enc = &rec
		case "/v1/transit/decrypt/k":
			denied = &rec
		}
	}
	id := identityOfKey(t, user)
	if enc == nil || enc.Identity != id || enc.Enclave != "minio" || enc.Status != 200 || len(enc.Items) != 1 || enc.Items[0].Key != "k" {
		t.Fatalf("encrypt record = %+v, want identity %s, enclave minio, key k", enc, id)
	}
	if denied == nil || denied.Identity != id || denied.Status != 403 || denied.Error != "permission denied" {
		t.Fatalf("denied record = %+v", denied)
	}
}
