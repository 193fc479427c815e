package migrate_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kmsledger/kmsledger/migrate"
	"github.com/kmsledger/kmsledger/migrate/migratetest"
)

// No Vault server can be installed here, so fakeVault replays the JSON
// shapes of Vault's documented HTTP API (auth/approle and auth/kubernetes
// login, KV v1 and v2 list/read, transit decrypt, {"errors": [...]}).
type fakeVault struct {
	t         *testing.T
	version   string            // "v1" or "v2"
	mount     string            // KV engine mount.
	prefix    string            // KES prefix.
	namespace string            // Required X-Vault-Namespace on KV requests.
	loginNS   string            // Required X-Vault-Namespace on login.
	roleID    string            // AppRole credentials.
	secretID  string            // AppRole credentials.
	k8sJWT    string            // Kubernetes login jwt.
	values    map[string]string // KES name → stored value (as KES wrote it).
	denied    map[string]bool   // Names the token may not read (403).
	deleted   map[string]bool   // v2: version 1 deleted (404 with metadata).
	misnamed  map[string]bool   // Secrets whose data field is not the key name.
	transit   bool              // Values are transit "ciphertexts".
	folders   []string          // Extra list entries ending in "/".
	expireAt  int               // Revoke tokens after this many KV requests (0 = never).
	fail500   bool

	mu       sync.Mutex
	tokens   map[string]bool
	logins   int
	requests int
}

const envelope = `{"request_id":"2f1b5c2e-6b6b-4b8e-9a45-5f1c8b0f7c11","lease_id":"","renewable":false,"lease_duration":%d,"data":%s,"wrap_info":null,"warnings":null,"auth":%s}`

func (f *fakeVault) reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func (f *fakeVault) errorReply(w http.ResponseWriter, status int, msgs ...string) {
	b, _ := json.Marshal(map[string][]string{"errors": append([]string{}, msgs...)})
	f.reply(w, status, string(b))
}

func (f *fakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := strings.TrimPrefix(r.URL.Path, "/v1/")
	if strings.HasPrefix(p, "auth/") {
		f.login(w, r, p)
		return
	}
	if f.fail500 {
		f.errorReply(w, http.StatusInternalServerError, "internal error")
		return
	}
	f.requests++
	if f.expireAt > 0 && f.requests%f.expireAt == 0 {
		clear(f.tokens) // The token expired.
	}
	if !f.tokens[r.Header.Get("X-Vault-Token")] || r.Header.Get("X-Vault-Namespace") != f.namespace {
		f.errorReply(w, http.StatusForbidden, "permission denied")
		return
	}
	if rest, ok := strings.CutPrefix(p, "transit/decrypt/"); ok && r.Method == http.MethodPost && rest == "kes-key" {
		var req struct{ Ciphertext string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !strings.HasPrefix(req.Ciphertext, "vault:v1:") {
			f.errorReply(w, http.StatusBadRequest, "invalid ciphertext")
			return
		}
		// Fake "decryption": the test stores base64(value) after the prefix.
		f.reply(w, http.StatusOK, fmt.Sprintf(envelope, 0, `{"plaintext":"`+strings.TrimPrefix(req.Ciphertext, "vault:v1:")+`"}`, "null"))
		return
	}
	listPath, dataPath := path.Join(f.mount, f.prefix), path.Join(f.mount, f.prefix)
	if f.version == "v2" {
		listPath, dataPath = path.Join(f.mount, "metadata", f.prefix), path.Join(f.mount, "data", f.prefix)
	}
	isList := r.Method == "LIST" || (r.Method == http.MethodGet && r.URL.Query().Get("list") == "true")
	switch {
	case isList && strings.TrimSuffix(p, "/") == listPath:
		var names []string
		for n := range f.values {
			names = append(names, n)
		}
		names = append(names, f.folders...)
		if len(names) == 0 {
			f.errorReply(w, http.StatusNotFound)
			return
		}
		slices.Sort(names)
		b, _ := json.Marshal(map[string][]string{"keys": names})
		f.reply(w, http.StatusOK, fmt.Sprintf(envelope, 0, b, "null"))
	case r.Method == http.MethodGet && path.Dir(p) == dataPath:
		f.read(w, r, path.Base(p))
	default:
		f.errorReply(w, http.StatusNotFound)
	}
}

func (f *fakeVault) read(w http.ResponseWriter, r *http.Request, name string) {
	value, ok := f.values[name]
	switch {
	case f.denied[name]:
		f.errorReply(w, http.StatusForbidden, "1 error occurred:\n\t* permission denied\n\n")
		return
	case !ok:
		f.errorReply(w, http.StatusNotFound)
		return
	}
	if f.transit {
		value = "vault:v1:" + base64.StdEncoding.EncodeToString([]byte(value))
	}
	field := name
	if f.misnamed[name] {
		field = "value"
	}
	data, _ := json.Marshal(map[string]string{field: value})
	if f.version == "v1" {
		f.reply(w, http.StatusOK, fmt.Sprintf(envelope, 2764800, data, "null"))
		return
	}
	if r.URL.Query().Get("version") != "1" {
		f.t.Errorf("KV v2 read %s without ?version=1", r.URL)
	}
	const meta = `"metadata":{"created_time":"2024-03-22T02:24:06.945319214Z","custom_metadata":null,"deletion_time":"%s","destroyed":false,"version":1}`
	if f.deleted[name] {
		f.reply(w, http.StatusNotFound, fmt.Sprintf(envelope, 0, `{"data":null,`+fmt.Sprintf(meta, "2024-04-01T00:00:00Z")+`}`, "null"))
		return
	}
	f.reply(w, http.StatusOK, fmt.Sprintf(envelope, 0, `{"data":`+string(data)+`,`+fmt.Sprintf(meta, "")+`}`, "null"))
}

func (f *fakeVault) login(w http.ResponseWriter, r *http.Request, p string) {
	var body map[string]string
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&body) != nil {
		f.errorReply(w, http.StatusBadRequest, "invalid request")
		return
	}
	ok := r.Header.Get("X-Vault-Namespace") == f.loginNS
	switch p {
	case "auth/approle-kes/login":
		ok = ok && f.roleID != "" && body["role_id"] == f.roleID && body["secret_id"] == f.secretID
	case "auth/kubernetes/login":
		ok = ok && f.k8sJWT != "" && body["role"] == "kes" && body["jwt"] == f.k8sJWT
	default:
		f.errorReply(w, http.StatusNotFound, "no handler for route")
		return
	}
	if !ok {
		f.errorReply(w, http.StatusBadRequest, "invalid role or secret ID") // Vault's status for bad AppRole creds.
		return
	}
	f.logins++
	token := fmt.Sprintf("hvs.token-%d", f.logins)
	if f.tokens == nil {
		f.tokens = map[string]bool{}
	}
	f.tokens[token] = true
	auth := `{"client_token":"` + token + `","accessor":"8609694a-cdbc-db9b-d345-e782dbb562ed","policies":["default","kes"],"token_policies":["default","kes"],"metadata":{"role_name":"kes"},"lease_duration":1200,"renewable":true,"entity_id":"","token_type":"service","orphan":true,"mfa_requirement":null,"num_uses":0}`
	f.reply(w, http.StatusOK, fmt.Sprintf(envelope, 0, "null", auth))
}

// storedValues writes n generated keys and returns name → value.
func storedValues(t *testing.T, n int) (map[string]string, []migrate.Key) {
	t.Helper()
	dir := t.TempDir()
	keys, err := migratetest.WriteFSKeystore(dir, n, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, k := range keys {
		b, err := os.ReadFile(filepath.Join(dir, k.Name))
		if err != nil {
			t.Fatal(err)
		}
		m[k.Name] = string(b)
	}
	return m, keys
}

// migrateAll lists, reads and parses every key of s.
func migrateAll(t *testing.T, s migrate.Source) map[string]migrate.Key {
	t.Helper()
	names, err := s.List(t.Context())
	if err != nil {
		t.Fatalf("List err = %v", err)
	}
	got := map[string]migrate.Key{}
	for _, n := range names {
		v, err := s.Read(t.Context(), n)
		if err != nil {
			t.Fatalf("Read(%s) err = %v", n, err)
		}
		if got[n], err = migrate.ParseKeyValue(n, v); err != nil {
			t.Fatalf("ParseKeyValue(%s) err = %v", n, err)
		}
	}
	return got
}

func TestVaultReadsAllKeys(t *testing.T) {
	t.Parallel()
	jwtFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(jwtFile, []byte("eyJhbGciOi.k8s.jwt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		fv   *fakeVault
		cfg  migrate.VaultConfig
	}{
		{"v1-approle", &fakeVault{version: "v1", mount: "kv", prefix: "kes", roleID: "r", secretID: "s3cr3t", folders: []string{"other/"}},
			migrate.VaultConfig{Engine: "kv", Version: "v1", Prefix: "kes", AppRole: &migrate.AppRole{Engine: "approle-kes", ID: "r", Secret: "s3cr3t"}}},
		{"v2-token-namespace", &fakeVault{version: "v2", mount: "secret", prefix: "a/b", namespace: "team/kes"},
			migrate.VaultConfig{Engine: "secret", Version: "v2", Prefix: "a/b", Namespace: "/team/kes/", Token: "hvs.static"}},
		{"v2-approle-root-login-ns", &fakeVault{version: "v2", mount: "kv", namespace: "ns1", roleID: "r", secretID: "s3cr3t"},
			migrate.VaultConfig{Engine: "kv", Version: "v2", Namespace: "ns1", AppRole: &migrate.AppRole{Namespace: "/", Engine: "approle-kes", ID: "r", Secret: "s3cr3t"}}},
		{"v1-kubernetes-transit", &fakeVault{version: "v1", mount: "kv", k8sJWT: "eyJhbGciOi.k8s.jwt", transit: true},
			migrate.VaultConfig{Engine: "kv", Version: "v1", Kubernetes: &migrate.Kubernetes{Engine: "kubernetes", Role: "kes", JWT: jwtFile}, Transit: &migrate.Transit{Engine: "transit", Key: "kes-key"}}},
		{"v1-token-expires", &fakeVault{version: "v1", mount: "kv", roleID: "r", secretID: "s3cr3t", expireAt: 5},
			migrate.VaultConfig{Engine: "kv", Version: "v1", AppRole: &migrate.AppRole{Engine: "approle-kes", ID: "r", Secret: "s3cr3t"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fv := tt.fv
			fv.t = t
			fv.values, _ = storedValues(t, 2*migratetest.NumFormats)
			if tt.cfg.Token != "" {
				fv.tokens = map[string]bool{tt.cfg.Token: true}
			}
			if tt.cfg.AppRole != nil && tt.cfg.AppRole.Namespace == "" {
				fv.loginNS = fv.namespace
			}
			srv := httptest.NewServer(fv)
			defer srv.Close()
			tt.cfg.Endpoint = srv.URL + "/"
			v, err := migrate.OpenVault(t.Context(), tt.cfg, srv.Client())
			if err != nil {
				t.Fatalf("OpenVault err = %v", err)
			}
			got := migrateAll(t, v)
			if len(got) != len(fv.values) {
				t.Errorf("read %d keys, want %d", len(got), len(fv.values))
			}
			for n, value := range fv.values {
				want, err := migrate.ParseKeyValue(n, []byte(value))
				if err != nil || !sameKey(got[n], want) {
					t.Errorf("key %s = %v, want %v (%v)", n, got[n], want, err)
				}
			}
			if v.Kind() != migrate.KindVault || strings.Contains(v.Location(), "hvs.") || strings.Contains(v.Location(), "s3cr3t") {
				t.Errorf("Kind, Location = %q, %q", v.Kind(), v.Location())
			}
			if tt.fv.expireAt > 0 && fv.logins < 2 {
				t.Errorf("logins = %d, want a second login after the token expired", fv.logins)
			}
		})
	}
}

func TestVaultLocation(t *testing.T) {
	t.Parallel()
	fv := &fakeVault{t: t, tokens: map[string]bool{"x": true}}
	srv := httptest.NewServer(fv)
	defer srv.Close()
	for _, tt := range []struct {
		cfg  migrate.VaultConfig
		want string
	}{
		{migrate.VaultConfig{Engine: "kv", Version: "v1", Prefix: "kes"}, "/v1/kv/kes"},
		{migrate.VaultConfig{Engine: "kv", Version: "v2", Prefix: "kes", Namespace: "ns/a"}, "/v1/ns/a/kv/data/kes"},
	} {
		tt.cfg.Endpoint, tt.cfg.Token = srv.URL, "x"
		v, err := migrate.OpenVault(t.Context(), tt.cfg, srv.Client())
		if err != nil || v.Location() != srv.URL+tt.want {
			t.Errorf("Location = %v, %v, want %s", v.Location(), err, srv.URL+tt.want)
		}
	}
}

func TestVaultErrors(t *testing.T) {
	t.Parallel()
	values, _ := storedValues(t, 3)
	values["no-field"] = "x"
	newFake := func() *fakeVault {
		fv := &fakeVault{t: t, version: "v2", mount: "kv", roleID: "r", secretID: "s3cr3t", values: values,
			denied: map[string]bool{"key-00001": true}, deleted: map[string]bool{"key-00002": true}, misnamed: map[string]bool{"no-field": true}}
		return fv
	}
	approle := migrate.VaultConfig{Engine: "kv", Version: "v2", AppRole: &migrate.AppRole{Engine: "approle-kes", ID: "r", Secret: "s3cr3t"}}

	t.Run("BadSecretID", func(t *testing.T) {
		srv := httptest.NewServer(newFake())
		defer srv.Close()
		cfg := approle
		cfg.Endpoint, cfg.AppRole = srv.URL, &migrate.AppRole{Engine: "approle-kes", ID: "r", Secret: "wrong"}
		if _, err := migrate.OpenVault(t.Context(), cfg, srv.Client()); !errors.Is(err, migrate.ErrVault) || !strings.Contains(err.Error(), "invalid role or secret ID") || strings.Contains(err.Error(), "wrong") {
			t.Errorf("OpenVault(bad secret) err = %v, want ErrVault with Vault's message and no secret", err)
		}
	})
	t.Run("BadToken", func(t *testing.T) {
		srv := httptest.NewServer(newFake())
		defer srv.Close()
		v, err := migrate.OpenVault(t.Context(), migrate.VaultConfig{Endpoint: srv.URL, Engine: "kv", Version: "v2", Token: "hvs.bad"}, srv.Client())
		if err != nil {
			t.Fatal(err) // A token is not checked until used.
		}
		if _, err := v.List(t.Context()); !errors.Is(err, migrate.ErrPermission) || !strings.Contains(err.Error(), "403") {
			t.Errorf("List(bad token) err = %v, want ErrPermission (403)", err)
		}
	})
	t.Run("PerKey", func(t *testing.T) {
		fv := newFake()
		v := openFakeVault(t, fv, approle)
		for name, want := range map[string]error{
			"key-00001": migrate.ErrPermission, // Denied by policy, even after a fresh login.
			"key-00002": migrate.ErrNotFound,   // Version 1 deleted.
			"missing":   migrate.ErrNotFound,
			"no-field":  nil,
			"a/b":       migrate.ErrName,
		} {
			_, err := v.Read(t.Context(), name)
			if want == nil {
				want = migrate.ErrKeyValue
			}
			if !errors.Is(err, want) || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
				t.Errorf("Read(%s) err = %v, want %v naming the key", name, err, want)
			}
		}
		if _, err := v.Read(t.Context(), "key-00000"); err != nil {
			t.Errorf("Read(key-00000) err = %v, want nil", err)
		}
	})
	t.Run("EmptyList", func(t *testing.T) {
		fv := newFake()
		fv.values = nil
		v := openFakeVault(t, fv, approle)
		if names, err := v.List(t.Context()); err != nil || len(names) != 0 {
			t.Errorf("List(empty) = %q, %v, want none, nil", names, err)
		}
	})
	t.Run("ServerError", func(t *testing.T) {
		fv := newFake()
		fv.fail500 = true
		v := openFakeVault(t, fv, approle)
		if _, err := v.List(t.Context()); !errors.Is(err, migrate.ErrVault) || !strings.Contains(err.Error(), "500") {
			t.Errorf("List err = %v, want ErrVault (500)", err)
		}
	})
}

// openFakeVault serves fv and opens it with cfg (its endpoint set to
// the server); the server stops at the end of the test.
func openFakeVault(t *testing.T, fv *fakeVault, cfg migrate.VaultConfig) *migrate.Vault {
	t.Helper()
	srv := httptest.NewServer(fv)
	t.Cleanup(srv.Close)
	cfg.Endpoint = srv.URL
	v, err := migrate.OpenVault(t.Context(), cfg, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVaultConfigErrors: a configuration without credentials, with an
// endpoint that is no URL, an unknown KV version or a missing CA file is
// refused before anything is sent.
func TestVaultConfigErrors(t *testing.T) {
	t.Parallel()
	for _, cfg := range []migrate.VaultConfig{
		{Endpoint: "http://127.0.0.1:1", Engine: "kv", Version: "v1"}, // No credentials.
		{Endpoint: "vault:8200", Engine: "kv", Version: "v1", Token: "t"},
		{Endpoint: "http://127.0.0.1:1", Engine: "kv", Version: "v9", Token: "t"},
		{Endpoint: "https://127.0.0.1:1", Engine: "kv", Version: "v1", Token: "t", TLS: migrate.VaultTLS{CA: "/nonexistent/ca.pem"}},
	} {
		if _, err := migrate.OpenVault(t.Context(), cfg, nil); !errors.Is(err, migrate.ErrConfig) {
			t.Errorf("OpenVault(%+v) err = %v, want ErrConfig", cfg, err)
		}
	}
}

// TestVaultTLS talks to a TLS Vault whose CA is given as a file and as a
// directory, as keystore.vault.tls.ca allows.
func TestVaultTLS(t *testing.T) {
	t.Parallel()
	fv := &fakeVault{t: t, version: "v1", mount: "kv", tokens: map[string]bool{"t": true}}
	fv.values, _ = storedValues(t, 2)
	srv := httptest.NewUnstartedServer(fv)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // The untrusted-CA case logs a handshake error.
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ca := range []string{caFile, dir} {
		v, err := migrate.OpenVault(t.Context(), migrate.VaultConfig{Endpoint: srv.URL, Engine: "kv", Version: "v1", Token: "t", TLS: migrate.VaultTLS{CA: ca}}, nil)
		if err != nil {
			t.Fatalf("OpenVault(CA %s) err = %v", ca, err)
		}
		if got := migrateAll(t, v); len(got) != 2 {
			t.Errorf("CA %s: read %d keys, want 2", ca, len(got))
		}
	}
	// Without the CA the server's certificate is not trusted.
	v, err := migrate.OpenVault(t.Context(), migrate.VaultConfig{Endpoint: srv.URL, Engine: "kv", Version: "v1", Token: "t"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.List(t.Context()); !errors.Is(err, migrate.ErrVault) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("List(untrusted server) err = %v, want a certificate error", err)
	}
	for _, bad := range []migrate.VaultTLS{
		{CA: filepath.Join(dir, "README")},
		{CA: t.TempDir()},
		{Cert: caFile, Key: filepath.Join(dir, "missing.key")},
	} {
		if _, err := migrate.NewVaultHTTPClient(bad); !errors.Is(err, migrate.ErrConfig) {
			t.Errorf("NewVaultHTTPClient(%+v) err = %v, want ErrConfig", bad, err)
		}
	}
}
