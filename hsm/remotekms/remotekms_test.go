package remotekms_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/hsm/hsmtest"
	"github.com/kmsledger/kmsledger/hsm/remotekms"
)

const enclave = "hsm"

// node is a whole kmsledger server in process (nodetest): embedded
// JetStream under a temp dir, a software HSM key, real TLS on a loopback
// port. It has an enclave "hsm".
type node struct {
	addr    string
	roots   *x509.CertPool
	rootKey string
	admin   *client.Client
	stop    func()
}

func startNode(t *testing.T) *node {
	t.Helper()
	a := nodetest.Start(t, nodetest.Options{})
	n := &node{addr: a.Addr, roots: a.Roots, rootKey: a.RootKey, admin: a.Client(t, ""), stop: a.Stop}
	if err := n.admin.CreateEnclave(context.Background(), enclave); err != nil {
		t.Fatalf("CreateEnclave err = %v", err)
	}
	return n
}

// newAPIKey returns a fresh API key and its identity.
func newAPIKey(t *testing.T) (apiKey, id string) {
	t.Helper()
	k, err := wire.GenerateAPIKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := wire.ParseAPIKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if id, err = wire.Identity(signer.Public()); err != nil {
		t.Fatal(err)
	}
	return k, id
}

// config returns a Config for key on n with the root API key.
func (n *node) config(key string) remotekms.Config {
	return remotekms.Config{Endpoints: []string{n.addr}, Enclave: enclave, Key: key, APIKey: n.rootKey, RootCAs: n.roots, Timeout: 10 * time.Second}
}

// createKey creates an AES256 key on n.
func (n *node) createKey(t *testing.T, key string) {
	t.Helper()
	if err := n.admin.CreateKey(context.Background(), enclave, key, "AES256", false); err != nil {
		t.Fatalf("CreateKey(%q) err = %v", key, err)
	}
}

func mustOpen(t *testing.T, cfg remotekms.Config) *remotekms.HSM {
	t.Helper()
	h, err := remotekms.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open(%v) err = %v, want nil", cfg, err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestConformance(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	i := 0
	hsmtest.Run(t, func(t *testing.T) hsm.Wrapper {
		i++
		name := fmt.Sprintf("key-%d", i)
		n.createKey(t, name)
		return mustOpen(t, n.config(name))
	})
}

func TestKeyIDAndLayout(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.createKey(t, "rek")
	h := mustOpen(t, n.config("rek"))
	if got, want := h.KeyID(), "kmsledger:hsm/rek"; got != want {
		t.Errorf("KeyID() = %q, want %q", got, want)
	}
	ct, err := h.Wrap(t.Context(), []byte("secret"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if ct[0] != 0x01 {
		t.Errorf("Wrap()[0] = %#x, want format byte 0x01", ct[0])
	}
	// The rest is a plain remote ciphertext under associated data 0x01 ‖ aad.
	resp, err := n.admin.Decrypt(t.Context(), enclave, "rek", 0, ct[1:], []byte("\x01aad"))
	if err != nil || string(resp.Plaintext) != "secret" {
		t.Errorf("remote Decrypt(Wrap()[1:], 0x01 ‖ aad) = %v, %v, want \"secret\"", resp, err)
	}
}

// TestFailover lists a dead endpoint first: it accepts connections and
// closes them at once. Every call must still succeed on the live one.
func TestFailover(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.createKey(t, "rek")
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	var tried atomic.Int64
	go func() {
		for {
			c, err := dead.Accept()
			if err != nil {
				return
			}
			tried.Add(1)
			c.Close()
		}
	}()
	cfg := n.config("rek")
	cfg.Endpoints = []string{dead.Addr().String(), n.addr}
	h := mustOpen(t, cfg)
	// Each call starts at a random endpoint; go on until the dead one has
	// been tried (probability 1 - 2^-200 of happening).
	for i := 0; i < 200 && tried.Load() == 0; i++ {
		pt := fmt.Appendf(nil, "round %d", i)
		ct, err := h.Wrap(t.Context(), pt, nil)
		if err != nil {
			t.Fatalf("Wrap round %d err = %v, want nil", i, err)
		}
		if got, err := h.Unwrap(t.Context(), ct, nil); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Unwrap round %d = %q, %v, want %q", i, got, err, pt)
		}
	}
	if tried.Load() == 0 {
		t.Fatalf("the dead endpoint was never tried")
	}
}

func TestServerStopped(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.createKey(t, "rek")
	h := mustOpen(t, n.config("rek"))
	ct, err := h.Wrap(t.Context(), []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	n.stop()
	if _, err := h.Unwrap(t.Context(), ct, nil); !errors.Is(err, remotekms.ErrUnreachable) || errors.Is(err, hsm.ErrUnseal) {
		t.Errorf("Unwrap(server stopped) err = %v, want ErrUnreachable and not ErrUnseal", err)
	}
	if _, err := h.Wrap(t.Context(), []byte("x"), nil); !errors.Is(err, remotekms.ErrUnreachable) {
		t.Errorf("Wrap(server stopped) err = %v, want ErrUnreachable", err)
	}
	if _, err := remotekms.Open(t.Context(), n.config("rek")); !errors.Is(err, remotekms.ErrUnreachable) || !strings.Contains(err.Error(), n.addr) {
		t.Errorf("Open(server stopped) err = %v, want ErrUnreachable naming %s", err, n.addr)
	}
}

// TestTimeout uses a server that accepts connections and never answers.
func TestTimeout(t *testing.T) {
	t.Parallel()
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var held []net.Conn // Kept open, unanswered, until the listener closes.
		for {
			c, err := mute.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	defer func() { mute.Close(); <-done }()
	apiKey, _ := newAPIKey(t)
	cfg := remotekms.Config{Endpoints: []string{mute.Addr().String()}, Enclave: enclave, Key: "rek", APIKey: apiKey, Timeout: 200 * time.Millisecond}
	_, err = remotekms.Open(t.Context(), cfg)
	if !errors.Is(err, remotekms.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Open(mute server) err = %v, want ErrUnreachable wrapping context.DeadlineExceeded", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.createKey(t, "rek")
	stranger, _ := newAPIKey(t)
	with := func(f func(*remotekms.Config)) remotekms.Config { c := n.config("rek"); f(&c); return c }
	tests := []struct {
		name    string
		cfg     remotekms.Config
		want    error
		mention string
	}{
		{"unknown API key", with(func(c *remotekms.Config) { c.APIKey = stranger }), remotekms.ErrPermission, "kmsledger:hsm/rek"},
		{"missing key", with(func(c *remotekms.Config) { c.Key = "absent" }), remotekms.ErrKeyNotFound, "kmsledger:hsm/absent"},
		{"missing enclave", with(func(c *remotekms.Config) { c.Enclave = "absent" }), remotekms.ErrKeyNotFound, "kmsledger:absent/rek"},
		{"no endpoints", with(func(c *remotekms.Config) { c.Endpoints = nil }), remotekms.ErrConfig, "endpoints"},
		{"no enclave", with(func(c *remotekms.Config) { c.Enclave = "" }), remotekms.ErrConfig, "enclave"},
		{"no key", with(func(c *remotekms.Config) { c.Key = "" }), remotekms.ErrConfig, "key name"},
		{"no API key", with(func(c *remotekms.Config) { c.APIKey = "" }), remotekms.ErrConfig, "API key"},
		{"malformed API key", with(func(c *remotekms.Config) { c.APIKey = "k1:not-a-valid-key" }), remotekms.ErrConfig, "API key"},
		{"malformed endpoint", with(func(c *remotekms.Config) { c.Endpoints = []string{"https://host/path"} }), remotekms.ErrConfig, "endpoint"},
		{"untrusted certificate", with(func(c *remotekms.Config) { c.RootCAs = x509.NewCertPool() }), remotekms.ErrUnreachable, "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := remotekms.Open(t.Context(), tc.cfg)
			if !errors.Is(err, tc.want) {
				if h != nil {
					h.Close()
				}
				t.Fatalf("Open(%s) err = %v, want %v", tc.name, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("Open(%s) err = %q, want it to mention %q", tc.name, err, tc.mention)
			}
			if tc.cfg.APIKey != "" && strings.Contains(err.Error(), tc.cfg.APIKey[3:]) {
				t.Errorf("Open(%s) err = %q contains the API key", tc.name, err)
			}
		})
	}
}

// TestPolicy opens the remote key with a User identity whose policy
// allows exactly what the HSM needs, and with one that cannot decrypt.
func TestPolicy(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.createKey(t, "rek-1")
	ctx := t.Context()
	policies := map[string]map[string][]string{
		"hsm-full":         {"KEY:ENCRYPT": {"rek-*"}, "KEY:DECRYPT": {"rek-*"}},
		"hsm-encrypt-only": {"KEY:ENCRYPT": {"rek-*"}},
	}
	keys := make(map[string]string)
	for name, allow := range policies {
		if err := n.admin.CreatePolicy(ctx, enclave, &wire.CreatePolicyRequest{Name: name, Allow: allow}); err != nil {
			t.Fatalf("CreatePolicy(%s) err = %v", name, err)
		}
		apiKey, id := newAPIKey(t)
		if err := n.admin.CreateIdentity(ctx, enclave, &wire.CreateIdentityRequest{Identity: id, Privilege: "User"}); err != nil {
			t.Fatalf("CreateIdentity err = %v", err)
		}
		if err := n.admin.AssignPolicy(ctx, enclave, id, name); err != nil {
			t.Fatalf("AssignPolicy(%s) err = %v", name, err)
		}
		keys[name] = apiKey
	}
	cfg := n.config("rek-1")
	cfg.APIKey = keys["hsm-full"]
	mustOpen(t, cfg)
	cfg.APIKey = keys["hsm-encrypt-only"]
	if _, err := remotekms.Open(ctx, cfg); !errors.Is(err, remotekms.ErrPermission) || !strings.Contains(err.Error(), "decrypt") {
		t.Errorf("Open(encrypt-only identity) err = %v, want ErrPermission on decrypt", err)
	}
}

// TestRemoteRotation rotates the remote key: old blobs still open (the
// version comes from the ciphertext) and new ones use the new version.
func TestRemoteRotation(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.createKey(t, "rek")
	h := mustOpen(t, n.config("rek"))
	old, err := h.Wrap(t.Context(), []byte("v1 secret"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.admin.CreateKey(t.Context(), enclave, "rek", "", true); err != nil {
		t.Fatalf("CreateKey(add version) err = %v", err)
	}
	if pt, err := h.Unwrap(t.Context(), old, []byte("aad")); err != nil || string(pt) != "v1 secret" {
		t.Errorf("Unwrap(blob of version 1) after rotation = %q, %v, want \"v1 secret\"", pt, err)
	}
	ct, err := h.Wrap(t.Context(), []byte("v2 secret"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := h.Unwrap(t.Context(), ct, []byte("aad")); err != nil || string(pt) != "v2 secret" {
		t.Errorf("Unwrap(blob of version 2) = %q, %v, want \"v2 secret\"", pt, err)
	}
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.createKey(t, "rek")
	h := mustOpen(t, n.config("rek"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := h.Wrap(ctx, []byte("x"), nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, remotekms.ErrUnreachable) {
		t.Errorf("Wrap(canceled context) err = %v, want context.Canceled and not ErrUnreachable", err)
	}
}

func TestConfigRedactsAPIKey(t *testing.T) {
	t.Parallel()
	apiKey, _ := newAPIKey(t)
	cfg := remotekms.Config{Endpoints: []string{"kms:7373"}, Enclave: "e", Key: "k", APIKey: apiKey}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("hsm", "config", cfg)
	secret := apiKey[3:]
	for _, out := range []string{fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), fmt.Sprintf("%v", &cfg), logged.String()} {
		if strings.Contains(out, secret) {
			t.Errorf("formatted config %q contains the API key", out)
		}
		if !strings.Contains(out, "kms:7373") {
			t.Errorf("formatted config %q lacks the endpoint", out)
		}
	}
}
