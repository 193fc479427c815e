package api_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/migrate/kescompat"
)

// kesEnclave is the enclave the KES API of startStackKES serves.
const kesEnclave = "kes"

// kesStack is a node whose second listener serves the KES API for
// kesEnclave (the kms API listener of the stack is unchanged).
type kesStack struct {
	*stack
	kesAddr string
	root    *client.Client // kms API client of root, to set up the enclave
}

// startStackKES starts a node, creates kesEnclave, and serves the KES API
// on another loopback port from the same handler and projection.
func startStackKES(t *testing.T) *kesStack {
	t.Helper()
	s := newStack(t)
	root := s.client("")
	mustOK(t, root.CreateEnclave(ctx, kesEnclave))
	srv := api.New(api.Config{Handler: s.Handler, Projection: s.Proj, Certificate: nodetest.Certificate(t), Version: "test", KESEnclave: kesEnclave})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	mustOK(t, err)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() { cancel(); <-done }) // runs before the stack's own cleanup
	return &kesStack{stack: s, kesAddr: ln.Addr().String(), root: root}
}

// parseKESAPIKey derives the Ed25519 key of a "kes:v1:" API key: std base64 of 33 bytes, type 0x00 (Ed25519) then the 32-byte seed.
func parseKESAPIKey(t testing.TB, s string) ed25519.PrivateKey {
	t.Helper()
	enc, ok := strings.CutPrefix(s, "kes:v1:")
	if !ok {
		t.Fatalf("API key %q lacks the kes:v1: prefix", s)
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(b) != 1+ed25519.SeedSize || b[0] != 0 {
		t.Fatalf("API key %q: want base64 of 0x00 ‖ 32-byte seed (err %v)", s, err)
	}
	return ed25519.NewKeyFromSeed(b[1:])
}

// newKESAPIKey returns a fresh kes:v1 API key.
func newKESAPIKey(t testing.TB) string {
	b := make([]byte, 1+ed25519.SeedSize)
	rand.Read(b[1:])
	return "kes:v1:" + base64.StdEncoding.EncodeToString(b)
}

// kesIdentity returns the KES identity of key: hex(SHA-256(SPKI DER)).
func kesIdentity(t testing.TB, key ed25519.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	mustOK(t, err)
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// h1Of converts a KES identity to the kmsledger identity of the same hash.
func h1Of(t testing.TB, kesID string) string {
	t.Helper()
	id, ok := kescompat.H1(kesID)
	if !ok {
		t.Fatalf("%q is not a KES identity", kesID)
	}
	return id
}

// kesCertificate makes the self-signed client certificate the KES SDK
// makes from an API key: CN = identity, ClientAuth, not a CA, 90 days.
func kesCertificate(t testing.TB, key ed25519.PrivateKey) tls.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	mustOK(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: kesIdentity(t, key)},
		NotBefore:    time.Now(), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	mustOK(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// kesClient speaks raw HTTPS to the KES API, so bodies and statuses are
// checked byte for byte.
type kesClient struct {
	t    testing.TB
	base string
	id   string // KES identity, "" without a certificate
	http *http.Client
}

// kesClient returns a client presenting certs (none: no certificate).
func (s *kesStack) kesClient(id string, certs ...tls.Certificate) *kesClient {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Roots, Certificates: certs, MinVersion: tls.VersionTLS12}}
	s.t.Cleanup(tr.CloseIdleConnections)
	return &kesClient{t: s.t, base: "https://" + s.kesAddr, id: id, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// kesAs returns a client for a kes:v1 API key and the key's KES identity.
func (s *kesStack) kesAs(apiKey string) (*kesClient, string) {
	key := parseKESAPIKey(s.t, apiKey)
	id := kesIdentity(s.t, key)
	return s.kesClient(id, kesCertificate(s.t, key)), id
}

// kesRoot returns a client with root's certificate (made from its k1 key).
func (s *kesStack) kesRoot() *kesClient {
	signer, err := wire.ParseAPIKey(s.RootKey)
	mustOK(s.t, err)
	cert, err := wire.ClientCertificate(signer)
	mustOK(s.t, err)
	der, err := x509.MarshalPKIXPublicKey(signer.Public())
	mustOK(s.t, err)
	sum := sha256.Sum256(der)
	return s.kesClient(hex.EncodeToString(sum[:]), cert)
}

// addIdentity makes a fresh KES API key an identity of kesEnclave with
// the privilege ("Admin" or "User") and, for Users, policy.
func (s *kesStack) addIdentity(privilege, policy string) (*kesClient, string) {
	c, id := s.kesAs(newKESAPIKey(s.t))
	mustOK(s.t, s.root.CreateIdentity(ctx, kesEnclave, &wire.CreateIdentityRequest{Identity: h1Of(s.t, id), Privilege: privilege}))
	if policy != "" {
		mustOK(s.t, s.root.AssignPolicy(ctx, kesEnclave, h1Of(s.t, id), policy))
	}
	return c, id
}

// on returns a copy of c that reports failures to t (for subtests).
func (c *kesClient) on(t testing.TB) *kesClient {
	d := *c
	d.t = t
	return &d
}

// kesResponse is a KES API answer.
type kesResponse struct {
	status int
	header http.Header
	body   []byte
}

func (c *kesClient) do(method, path, body string) kesResponse {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	mustOK(c.t, err)
	resp, err := c.http.Do(req)
	mustOK(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	mustOK(c.t, err)
	return kesResponse{resp.StatusCode, resp.Header, b}
}

// ok calls and requires 200; it decodes a JSON answer into out (if given).
func (c *kesClient) ok(method, path, body string, out any) []byte {
	c.t.Helper()
	r := c.do(method, path, body)
	if r.status != http.StatusOK {
		c.t.Fatalf("%s %s = %d %s, want 200", method, path, r.status, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			c.t.Fatalf("%s %s: body %s: %v", method, path, r.body, err)
		}
	}
	return r.body
}

// fails calls and requires the KES error answer status + {"message":msg}.
func (c *kesClient) fails(method, path, body string, status int, msg string) kesResponse {
	c.t.Helper()
	r := c.do(method, path, body)
	var e struct {
		Message string `json:"message"`
	}
	if r.status != status || r.header.Get("Content-Type") != "application/json" || json.Unmarshal(r.body, &e) != nil || e.Message != msg {
		c.t.Fatalf("%s %s = %d %q %s, want %d application/json {\"message\":%q}", method, path, r.status, r.header.Get("Content-Type"), r.body, status, msg)
	}
	return r
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// kesRawCiphertext encrypts pt like KES since 2024 (the "raw" format,
// vectors in testdata/kes/): AES-256-GCM under HMAC-SHA256(key, iv), sealed ‖ iv ‖ nonce.
func kesRawCiphertext(t testing.TB, key, pt, context []byte) []byte {
	t.Helper()
	iv, nonce := make([]byte, 16), make([]byte, 12)
	rand.Read(iv)
	rand.Read(nonce)
	m := hmac.New(sha256.New, key)
	m.Write(iv)
	block, err := aes.NewCipher(m.Sum(nil))
	mustOK(t, err)
	gcm, err := cipher.NewGCM(block)
	mustOK(t, err)
	ct := gcm.Seal(nil, nonce, pt, context)
	return append(append(ct, iv...), nonce...)
}

func TestKESAPIKeyIdentity(t *testing.T) {
	// Vectors from spec/kes-vectors/README.md (real KES output).
	tests := []struct{ apiKey, identity string }{
		{"kes:v1:AOx5cJcj+uYhi52FQFRNaqvP9yBBkvBEb1yLo4RQPnNK", "54cd2e2f0410061385ce7dda7fcd46f95c1f93c53eab4fe03225f6f20153fff9"},
		{"kes:v1:AAmH8enLgSC5xeQbSFGs3fHqi6Y6JMVOGzbbj0/5jJZV", "2cb2f9a360a05426aa1dd3426d1cd3c9f98fc520a8d55a191e7329bd64481114"},
	}
	for _, tt := range tests {
		key := parseKESAPIKey(t, tt.apiKey)
		if got := kesIdentity(t, key); got != tt.identity {
			t.Errorf("identity(%s) = %s, want %s", tt.apiKey, got, tt.identity)
		}
		h1, err := wire.Identity(key.Public())
		mustOK(t, err)
		if want := h1Of(t, tt.identity); h1 != want {
			t.Errorf("kmsledger identity of %s = %s, want %s (same hash as the KES identity)", tt.apiKey, h1, want)
		}
	}
}

func TestKESKeyLifecycle(t *testing.T) {
	s := startStackKES(t)
	admin, adminID := s.addIdentity("Admin", "")

	if b := admin.ok("POST", "/v1/key/create/my-key", "", nil); len(b) != 0 {
		t.Fatalf("create body = %q, want empty", b)
	}
	admin.ok("PUT", "/v1/key/create/other-key", "", nil)
	admin.fails("POST", "/v1/key/create/my-key", "", 400, "key already exists")

	var info struct {
		Name, Algorithm string
		CreatedAt       time.Time `json:"created_at"`
		CreatedBy       string    `json:"created_by"`
	}
	admin.ok("GET", "/v1/key/describe/my-key", "", &info)
	if info.Name != "my-key" || info.Algorithm != "AES256" || info.CreatedBy != adminID || time.Since(info.CreatedAt) > time.Hour {
		t.Fatalf("describe = %+v, want my-key AES256 created by %s just now", info, adminID)
	}

	var list struct {
		Names      []string `json:"names"`
		ContinueAt string   `json:"continue_at"`
	}
	for path, want := range map[string]string{
		"/v1/key/list":        "my-key,other-key", // what the SDK sends for ""
		"/v1/key/list/*":      "my-key,other-key",
		"/v1/key/list/my":     "my-key",
		"/v1/key/list/other*": "other-key",
		"/v1/key/list/zzz":    "",
	} {
		admin.ok("GET", path, "", &list)
		if got := strings.Join(list.Names, ","); got != want || list.ContinueAt != "" {
			t.Errorf("GET %s = %v %q, want [%s] and no continue_at", path, list.Names, list.ContinueAt, want)
		}
	}

	admin.ok("DELETE", "/v1/key/delete/other-key", "", nil)
	admin.fails("GET", "/v1/key/describe/other-key", "", 404, "key does not exist")
	admin.fails("DELETE", "/v1/key/delete/other-key", "", 404, "key does not exist")
	admin.fails("POST", "/v1/key/generate/other-key", "", 404, "key does not exist")
}

func TestKESCrypto(t *testing.T) {
	s := startStackKES(t)
	admin, _ := s.addIdentity("Admin", "")
	admin.ok("POST", "/v1/key/create/minio-default-key", "", nil)

	type dek struct{ Plaintext, Ciphertext []byte }
	type pt struct{ Plaintext []byte }
	contexts := [][]byte{nil, []byte("{}"), []byte(`{"bucket":"bucket/object"}`)}
	for _, c := range contexts {
		body := ""
		if c != nil {
			body = `{"context":"` + b64(c) + `"}`
		}
		var g dek
		admin.ok("POST", "/v1/key/generate/minio-default-key", body, &g)
		if len(g.Plaintext) != 32 || len(g.Ciphertext) == 0 {
			t.Fatalf("generate(%q) = %d-byte plaintext, %d-byte ciphertext", c, len(g.Plaintext), len(g.Ciphertext))
		}
		var d pt
		admin.ok("POST", "/v1/key/decrypt/minio-default-key", `{"ciphertext":"`+b64(g.Ciphertext)+`","context":"`+b64(c)+`"}`, &d)
		if !bytes.Equal(d.Plaintext, g.Plaintext) {
			t.Fatalf("decrypt(generate(%q)) != plaintext", c)
		}
		admin.fails("POST", "/v1/key/decrypt/minio-default-key", `{"ciphertext":"`+b64(g.Ciphertext)+`","context":"`+b64([]byte("other"))+`"}`,
			400, "decryption failed: ciphertext is not authentic")
	}
	// A null context is the empty context.
	var g dek
	admin.ok("POST", "/v1/key/generate/minio-default-key", `{"context":null,"version":""}`, &g)
	var d pt
	admin.ok("POST", "/v1/key/decrypt/minio-default-key", `{"ciphertext":"`+b64(g.Ciphertext)+`"}`, &d)
	if !bytes.Equal(d.Plaintext, g.Plaintext) {
		t.Fatal("decrypt without context of generate with null context != plaintext")
	}

	var e struct{ Ciphertext []byte }
	admin.ok("PUT", "/v1/key/encrypt/minio-default-key", `{"plaintext":"`+b64([]byte("hello"))+`","context":"`+b64([]byte("ctx"))+`"}`, &e)
	admin.ok("PUT", "/v1/key/decrypt/minio-default-key", `{"ciphertext":"`+b64(e.Ciphertext)+`","context":"`+b64([]byte("ctx"))+`"}`, &d)
	if string(d.Plaintext) != "hello" {
		t.Fatalf("decrypt(encrypt(hello)) = %q", d.Plaintext)
	}

	// Legacy bulk decrypt (KES ≤ v0.22): all or nothing.
	var bulk []pt
	admin.ok("POST", "/v1/key/bulk/decrypt/minio-default-key",
		`[{"ciphertext":"`+b64(e.Ciphertext)+`","context":"`+b64([]byte("ctx"))+`"},{"ciphertext":"`+b64(g.Ciphertext)+`"}]`, &bulk)
	if len(bulk) != 2 || string(bulk[0].Plaintext) != "hello" || !bytes.Equal(bulk[1].Plaintext, g.Plaintext) {
		t.Fatalf("bulk decrypt = %+v", bulk)
	}
	admin.fails("POST", "/v1/key/bulk/decrypt/minio-default-key", `[{"ciphertext":"`+b64(e.Ciphertext)+`"}]`,
		400, "decryption failed: ciphertext is not authentic")
}

func TestKESImportDecryptsKESCiphertexts(t *testing.T) {
	s := startStackKES(t)
	admin, _ := s.addIdentity("Admin", "")
	key := make([]byte, 32)
	rand.Read(key)
	admin.ok("POST", "/v1/key/import/imported", `{"key":"`+b64(key)+`","cipher":"AES256"}`, nil)
	admin.fails("POST", "/v1/key/import/imported", `{"key":"`+b64(key)+`","cipher":"AES256"}`, 400, "key already exists")

	// What KES made with this key still decrypts, with its context.
	context := []byte(`{"bucket":"bucket/object"}`)
	want := []byte("a data encryption key of 32 byte")
	raw := kesRawCiphertext(t, key, want, context)
	var d struct{ Plaintext []byte }
	admin.ok("POST", "/v1/key/decrypt/imported", `{"ciphertext":"`+b64(raw)+`","context":"`+b64(context)+`"}`, &d)
	if !bytes.Equal(d.Plaintext, want) {
		t.Fatalf("decrypt(KES raw ciphertext) = %x, want %x", d.Plaintext, want)
	}
	admin.fails("POST", "/v1/key/decrypt/imported", `{"ciphertext":"`+b64(raw)+`"}`, 400, "decryption failed: ciphertext is not authentic")

	// The body of KES ≤ v0.19 ({"bytes"}) is accepted too.
	admin.ok("POST", "/v1/key/import/legacy", `{"bytes":"`+b64(key)+`"}`, nil)
	admin.ok("POST", "/v1/key/decrypt/legacy", `{"ciphertext":"`+b64(raw)+`","context":"`+b64(context)+`"}`, &d)

	admin.ok("POST", "/v1/key/import/chacha", `{"key":"`+b64(key)+`","cipher":"XCHACHA20-POLY1305"}`, nil)
	var info struct{ Algorithm string }
	admin.ok("GET", "/v1/key/describe/chacha", "", &info)
	if info.Algorithm != "ChaCha20" {
		t.Fatalf("describe(imported ChaCha20 key).algorithm = %q", info.Algorithm)
	}

	admin.fails("POST", "/v1/key/import/bad", `{"key":"`+b64(key)+`","cipher":"DES"}`, 406, "algorithm 'DES' is not supported")
	admin.fails("POST", "/v1/key/import/bad", `{"key":"`+b64(key[:16])+`","cipher":"AES256"}`, 406, "invalid key size for 'AES256'")
	admin.fails("POST", "/v1/key/import/bad", `{"key":`, 400, "invalid request body")
}

func TestKESHMAC(t *testing.T) {
	s := startStackKES(t)
	admin, _ := s.addIdentity("Admin", "")
	admin.ok("POST", "/v1/key/create/k", "", nil)
	var h1, h2, h3 struct{ HMAC []byte }
	admin.ok("PUT", "/v1/key/hmac/k", `{"message":"`+b64([]byte("root access key"))+`"}`, &h1)
	admin.ok("POST", "/v1/key/hmac/k", `{"message":"`+b64([]byte("root access key"))+`"}`, &h2)
	admin.ok("PUT", "/v1/key/hmac/k", `{"message":"`+b64([]byte("root secret key"))+`"}`, &h3)
	if len(h1.HMAC) != 32 || !bytes.Equal(h1.HMAC, h2.HMAC) || bytes.Equal(h1.HMAC, h3.HMAC) {
		t.Fatalf("hmac = %x, %x, %x: want 32 bytes, deterministic, message-dependent", h1.HMAC, h2.HMAC, h3.HMAC)
	}
	m, err := s.root.MAC(ctx, kesEnclave, "k", 0, []byte("root access key"))
	mustOK(t, err)
	if !bytes.Equal(m.MAC, h1.HMAC) {
		t.Fatalf("KES hmac %x != kms MAC %x of the same key and message", h1.HMAC, m.MAC)
	}
	admin.fails("PUT", "/v1/key/hmac/missing", `{"message":""}`, 404, "key does not exist")
}

func TestKESBadRequests(t *testing.T) {
	s := startStackKES(t)
	admin, _ := s.addIdentity("Admin", "")
	admin.ok("POST", "/v1/key/create/k", "", nil)

	tests := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"InvalidName", "POST", "/v1/key/create/bad.name", "", 400, "key name 'bad.name' is empty, too long or contains invalid characters"},
		{"EmptyName", "POST", "/v1/key/create/", "", 400, "key name '' is empty, too long or contains invalid characters"},
		{"TooLongName", "POST", "/v1/key/create/" + strings.Repeat("a", 81), "", 400, "key name '" + strings.Repeat("a", 81) + "' is empty, too long or contains invalid characters"},
		{"BadListPattern", "GET", "/v1/key/list/a.b*", "", 400, "pattern 'a.b*' is too long or contains invalid characters"},
		{"BadJSON", "POST", "/v1/key/encrypt/k", `{"plaintext":`, 400, "invalid request body"},
		{"NoBody", "POST", "/v1/key/decrypt/k", "", 400, "invalid request body"},
		{"BadBase64", "POST", "/v1/key/decrypt/k", `{"ciphertext":"!!"}`, 400, "invalid request body"},
		{"BadGenerateBody", "POST", "/v1/key/generate/k", `[]`, 400, "invalid request body"},
		{"EmptyCiphertext", "POST", "/v1/key/decrypt/k", `{"ciphertext":""}`, 400, "decryption failed: ciphertext is not authentic"},
		{"BodyTooLarge", "POST", "/v1/key/encrypt/k", `{"plaintext":"` + strings.Repeat("A", 1_000_000) + `"}`, 413, "request body too large: limit is 1000000 bytes"},
		{"BadIdentity", "GET", "/v1/identity/describe/xyz", "", 400, "identity 'xyz' is invalid: want 64 hex characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			admin.on(t).fails(tt.method, tt.path, tt.body, tt.status, tt.msg)
		})
	}

	t.Run("WrongMethod", func(t *testing.T) {
		for path, want := range map[string]string{"/v1/key/create/k": "PUT", "/v1/key/describe/k": "GET", "/v1/key/delete/k": "DELETE"} {
			method := "GET"
			if want == "GET" {
				method = "POST"
			}
			r := admin.on(t).fails(method, path, "", 405, "method not allowed")
			if r.header.Get("Accept") != want {
				t.Errorf("%s %s: Accept = %q, want %q", method, path, r.header.Get("Accept"), want)
			}
		}
	})
	t.Run("UnknownPath", func(t *testing.T) {
		r := admin.on(t).do("GET", "/v1/key/rotate/k", "")
		if r.status != 404 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") || string(r.body) != "404 page not found\n" {
			t.Fatalf("GET unknown path = %d %q %q, want 404 text/plain", r.status, r.header.Get("Content-Type"), r.body)
		}
	})
}
