package api_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/api/wire"
)

// Every way to call without the right: 403 "permission denied", and
// nothing changes.
func TestTransitHostileCallers(t *testing.T) {
	s := newTransitStack(t)
	s.call(t, "POST", "/v1/transit/keys/k", s.RootKey, nil).want(t, 200, "")
	ct := s.call(t, "PUT", "/v1/transit/encrypt/k", s.RootKey, map[string]any{"plaintext": b64s("secret")}).want(t, 200, "").str(t, "ciphertext")

	randomKey, _ := newIdentity(t) // an identity of no enclave
	other := s.userWith(t, "team", "KEY:ENCRYPT", "KEY:DECRYPT", "KEY:CREATE", "KEY:DELETE", "KEY:STATUS", "KEY:LIST")
	narrow := s.userWith(t, "minio", "KEY:STATUS")
	before := s.stateJSON() // the users above are part of the state
	seed := make([]byte, 32)
	rand.Read(seed)
	for name, tok := range map[string]string{
		"no token": "", "garbage": "s.1234", "random k1 key": randomKey,
		"k1 of no identity": "k1:" + base64.RawURLEncoding.EncodeToString(seed), "User of another enclave": other,
		"oversized token": "k1:" + strings.Repeat("A", 10000),
	} {
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct{ method, path string }{
				{"PUT", "/v1/transit/decrypt/k"}, {"PUT", "/v1/transit/encrypt/k"}, {"PUT", "/v1/transit/encrypt/new"},
				{"GET", "/v1/transit/keys/k"}, {"LIST", "/v1/transit/keys"}, {"DELETE", "/v1/transit/keys/k"},
				{"POST", "/v1/transit/keys/k/rotate"}, {"POST", "/v1/transit/random"}, {"POST", "/v1/transit/no/such/path"},
				{"GET", "/v1/auth/token/lookup-self"},
			} {
				r := s.call(t, c.method, c.path, tok, map[string]any{"ciphertext": ct, "plaintext": b64s("x")})
				if c.path == "/v1/auth/token/lookup-self" && tok == other {
					r.want(t, 200, "") // a valid token of any enclave describes itself
					continue
				}
				r.want(t, 403, "permission denied")
			}
		})
	}
	// A User allowed only KEY:STATUS reads the key and nothing more.
	s.call(t, "GET", "/v1/transit/keys/k", narrow, nil).want(t, 200, "")
	for _, c := range []struct{ method, path string }{
		{"PUT", "/v1/transit/decrypt/k"}, {"PUT", "/v1/transit/encrypt/k"}, {"POST", "/v1/transit/keys/k/config"},
		{"POST", "/v1/transit/hmac/k"}, {"POST", "/v1/transit/datakey/plaintext/k"}, {"POST", "/v1/transit/rewrap/k"},
		{"POST", "/v1/transit/keys/k2"}, {"LIST", "/v1/transit/keys"}, {"POST", "/v1/transit/config/keys"},
	} {
		s.call(t, c.method, c.path, narrow, map[string]any{"ciphertext": ct, "plaintext": "", "deletion_allowed": true}).want(t, 403, "permission denied")
	}
	// A namespace other than root is refused, even with root's token.
	req, _ := http.NewRequest("GET", "https://"+s.addr+"/v1/transit/keys/k", nil)
	req.Header.Set("X-Vault-Token", s.RootKey)
	req.Header.Set("X-Vault-Namespace", "team/")
	resp, err := s.http.Do(req)
	mustOK(t, err)
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("namespace team/: status %d, want 403", resp.StatusCode)
	}
	// "Authorization: Bearer" works like X-Vault-Token.
	req, _ = http.NewRequest("GET", "https://"+s.addr+"/v1/transit/keys/k", nil)
	req.Header.Set("Authorization", "Bearer "+s.RootKey)
	resp, err = s.http.Do(req)
	mustOK(t, err)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("Bearer token: status %d, want 200", resp.StatusCode)
	}
	if after := s.stateJSON(); after != before {
		t.Errorf("refused requests changed the state:\nbefore %s\nafter  %s", before, after)
	}
}

// A token whose identity is deleted stops working at once.
func TestTransitDeletedIdentity(t *testing.T) {
	s := newTransitStack(t)
	s.call(t, "POST", "/v1/transit/keys/k", s.RootKey, nil).want(t, 200, "")
	tok := s.userWith(t, "minio", "KEY:ENCRYPT")
	s.call(t, "PUT", "/v1/transit/encrypt/k", tok, map[string]any{"plaintext": ""}).want(t, 200, "")
	mustOK(t, s.root.DeleteIdentity(ctx, "minio", identityOfKey(t, tok)))
	s.call(t, "PUT", "/v1/transit/encrypt/k", tok, map[string]any{"plaintext": ""}).want(t, 403, "permission denied")
}

func identityOfKey(t testing.TB, key string) string {
	t.Helper()
	k, err := wire.ParseAPIKey(key)
	mustOK(t, err)
	id, err := wire.Identity(k.Public())
	mustOK(t, err)
	return id
}

// Oversized and malformed input: 4xx, never a 5xx (the Go client retries
// 5xx), and nothing changes.
func TestTransitHostileInput(t *testing.T) {
	s := newTransitStack(t)
	root := s.RootKey
	s.call(t, "POST", "/v1/transit/keys/k", root, nil).want(t, 200, "")
	before := s.stateJSON()

	// A body above the limit: 413 before it is read.
	big := `{"plaintext":"` + strings.Repeat("A", 2<<20) + `"}`
	if r := s.call(t, "PUT", "/v1/transit/encrypt/k", root, big); r.Status != 413 {
		t.Errorf("2 MiB body: status %d, want 413", r.Status)
	}
	// A batch above the bound.
	items := make([]map[string]any, 1001)
	for i := range items {
		items[i] = map[string]any{"plaintext": ""}
	}
	s.call(t, "PUT", "/v1/transit/encrypt/k", root, map[string]any{"batch_input": items}).want(t, 400, "at most 1000")
	// Path traversal and names kmsledger keys cannot have: no handler
	// runs on them, no key is made.
	for _, p := range []string{
		"/v1/transit/encrypt/..%2F..%2Fkms", "/v1/transit/encrypt/a%2Fb", "/v1/transit/encrypt/a.b", "/v1/transit/keys/%2e%2e",
		"/v1/transit/encrypt/" + strings.Repeat("a", 81), "/v1/transit/keys/a%00b",
	} {
		r := s.call(t, "PUT", p, root, map[string]any{"plaintext": ""})
		if r.Status < 400 || r.Status >= 500 {
			t.Errorf("PUT %s: status %d (%s), want a 4xx", p, r.Status, r.Raw)
		}
	}
	r := s.call(t, "PUT", "/v1/transit/encrypt/../../kms", root, map[string]any{"plaintext": ""})
	if r.Status < 300 || r.Status >= 500 {
		t.Errorf("PUT with ../..: status %d, want a redirect or a 4xx", r.Status)
	}
	for _, body := range []string{`[1,2]`, `{"plaintext": 5}`, `{"batch_input": [1]}`, `{"plaintext": "", "key_version": "x"}`,
		`{"plaintext": "", "key_version": -1}`, `{"plaintext": "", "context": 7}`, `{"plaintext": "", "associated_data": "@@"}`, strings.Repeat("{", 100000)} {
		r := s.call(t, "PUT", "/v1/transit/encrypt/k", root, body)
		if r.Status != 400 {
			t.Errorf("encrypt %.40q: status %d (%s), want 400", body, r.Status, r.Raw)
		}
	}
	if after := s.stateJSON(); after != before {
		t.Error("hostile input changed the state")
	}
	// A key disabled in kmsledger: Transit clients get a 4xx naming it.
	ct := s.call(t, "PUT", "/v1/transit/encrypt/k", root, map[string]any{"plaintext": b64s("x")}).want(t, 200, "").str(t, "ciphertext")
	mustOK(t, s.root.DisableKey(ctx, "minio", "k", 0))
	s.call(t, "PUT", "/v1/transit/decrypt/k", root, map[string]any{"ciphertext": ct}).want(t, 400, "disabled")
	s.call(t, "PUT", "/v1/transit/encrypt/k", root, map[string]any{"plaintext": ""}).want(t, 400, "disabled")
	if !bytes.Contains(s.call(t, "GET", "/v1/transit/keys/k", root, nil).want(t, 200, "").Raw, []byte(`"name":"k"`)) {
		t.Error("a disabled key no longer reads")
	}
}
