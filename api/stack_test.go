package api_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// stack is a whole kmsledger node in process: real embedded JetStream
// under a temp dir, real Tink, real TLS on a loopback port.
type stack struct {
	t       testing.TB
	dir     string
	hsmKey  string
	addr    string
	store   *ledger.Store
	proj    *projections.Projection
	h       *commands.Handler
	rootKey string
	rootID  string
	roots   *x509.CertPool
	stop    func()
}

var testCert = func() tls.Certificate {
	cert, err := tls.X509KeyPair([]byte(testCertPEM), []byte(testKeyPEM))
	if err != nil {
		panic(err)
	}
	return cert
}()

// newStack starts a node on a fresh data dir.
func newStack(t testing.TB) *stack {
	t.Helper()
	k, err := softkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return startStack(t, t.TempDir(), k)
}

// startStack starts a node on dir with the software HSM key hsmKey.
func startStack(t testing.TB, dir, hsmKey string) *stack {
	t.Helper()
	ctx := context.Background()
	hk, err := softkey.Parse(hsmKey)
	if err != nil {
		t.Fatal(err)
	}
	seed := hk.DeriveSeed("kmsledger/root-api-key/v1")
	rootKey := "k1:" + base64.RawURLEncoding.EncodeToString(seed)
	rootID := identityOf(t, rootKey)

	store, err := ledger.Open(ctx, ledger.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	rek, _, _, err := commands.Bootstrap(ctx, store, hk, rootID, "AES256")
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	proj, err := projections.Open(ctx, store, rek, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := commands.NewHandler(store, proj, rek, nil)
	if _, err := h.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Config{Handler: h, Projection: proj, Certificate: testCert, Version: "test"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	roots := x509.NewCertPool()
	roots.AddCert(testCert.Leaf)
	s := &stack{t: t, dir: dir, hsmKey: hsmKey, addr: ln.Addr().String(), store: store, proj: proj, h: h,
		rootKey: rootKey, rootID: rootID, roots: roots}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		proj.Close()
		store.Close()
	}
	t.Cleanup(s.stop)
	return s
}

// restart stops the node and starts it again on the same data dir.
func (s *stack) restart() *stack {
	s.stop()
	return startStack(s.t, s.dir, s.hsmKey)
}

// client returns a client authenticated with apiKey ("" = root).
func (s *stack) client(apiKey string) *client.Client {
	s.t.Helper()
	if apiKey == "" {
		apiKey = s.rootKey
	}
	c, err := client.New(client.Config{Endpoints: []string{s.addr}, APIKey: apiKey, RootCAs: s.roots, Timeout: 30 * time.Second})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// stateJSON is a canonical dump of the projected state (unsealed key
// material is unexported and never part of it).
func (s *stack) stateJSON() string {
	var b []byte
	s.proj.View(func(st *projections.State) { b, _ = json.Marshal(st) })
	return string(b)
}

func identityOf(t testing.TB, apiKey string) string {
	t.Helper()
	signer, err := wire.ParseAPIKey(apiKey)
	if err != nil {
		t.Fatal(err)
	}
	id, err := wire.Identity(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// newIdentity returns a fresh API key and its identity.
func newIdentity(t testing.TB) (apiKey, id string) {
	t.Helper()
	k, err := wire.GenerateAPIKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, identityOf(t, k)
}
