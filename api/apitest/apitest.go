// Package apitest runs a whole kmsledger node in process for tests: a
// real embedded JetStream ledger in a temp dir, a software HSM key, real
// Tink, and the HTTPS API on a loopback port with a self-signed
// certificate. It is what cmd/kmsledger's server wires, minus flags.
package apitest

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"sync"
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

// RootKeyLabel is the HKDF label cmd/kmsledger derives the root API key
// from a software HSM key with.
const RootKeyLabel = "kmsledger/root-api-key/v1"

// Options of a node; the zero value is a fresh node without auditing.
type Options struct {
	Dir    string // data dir; "" = a new temp dir
	HSMKey string // software HSM key; "" = a new one
	// Audit, if set, audits every request and checkpoints the ledger
	// (every CheckpointEvents events, default 50), as the server does.
	Audit            *ledger.AuditConfig
	CheckpointEvents int
	Checkpoints      bool // checkpoint the ledger also without auditing
	// Configure, if set, may change the API configuration last.
	Configure func(*api.Config)
}

// Node is a running node.
type Node struct {
	Dir, HSMKey, Addr string
	RootKey, RootID   string
	Roots             *x509.CertPool
	Certificate       tls.Certificate
	Store             *ledger.Store
	Proj              *projections.Projection
	Handler           *commands.Handler
	Auditor           *ledger.Auditor              // nil without auditing
	SigningKeys       map[string]ed25519.PublicKey // checkpoint keys, with auditing

	stop func()
}

// certificate is one self-signed certificate for 127.0.0.1 and localhost
// per test binary; its key protects nothing.
var certificate = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kmsledger test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature, // a self-signed leaf, trusted as a root by the clients
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: false,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, err
})

// Certificate returns the node's certificate: self-signed for 127.0.0.1
// and localhost, one per test binary.
func Certificate(tb testing.TB) tls.Certificate {
	tb.Helper()
	c, err := certificate()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Start starts a node and stops it when the test ends.
func Start(tb testing.TB, o Options) *Node {
	tb.Helper()
	ctx := context.Background()
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	cert, err := certificate()
	must(err)
	if o.Dir == "" {
		o.Dir = tb.TempDir()
	}
	if o.HSMKey == "" {
		o.HSMKey, err = softkey.Generate(rand.Reader)
		must(err)
	}
	hk, err := softkey.Parse(o.HSMKey)
	must(err)
	seed := hk.DeriveSeed(RootKeyLabel)
	n := &Node{Dir: o.Dir, HSMKey: o.HSMKey, Certificate: cert, RootKey: "k1:" + base64.RawURLEncoding.EncodeToString(seed)}
	n.RootID = Identity(tb, n.RootKey)

	n.Store, err = ledger.Open(ctx, ledger.Config{Dir: o.Dir})
	must(err)
	closeStore := func() { n.Store.Close() }
	rek, _, _, err := commands.Bootstrap(ctx, n.Store, hk, n.RootID, "AES256")
	if err != nil {
		closeStore()
		tb.Fatal(err)
	}
	n.Proj, err = projections.Open(ctx, n.Store, rek, nil)
	must(err)
	n.Handler = commands.NewHandler(n.Store, n.Proj, rek, nil)
	_, err = n.Handler.Reconcile(ctx)
	must(err)
	cfg := api.Config{Handler: n.Handler, Projection: n.Proj, Certificate: cert, Version: "test"}
	closeAudit := func() error { return nil }
	if o.Audit != nil || o.Checkpoints {
		signer, err := commands.SigningKey(ctx, n.Store, n.Proj, rek, n.RootID)
		must(err)
		pub := signer.Public().(ed25519.PublicKey)
		n.SigningKeys = map[string]ed25519.PublicKey{ledger.KeyID(pub): pub}
		events := o.CheckpointEvents
		if events == 0 {
			events = 50
		}
		cp := n.Store.StartCheckpoints(signer, ledger.CheckpointConfig{Events: events})
		if o.Audit != nil {
			n.Auditor = n.Store.NewAuditor(*o.Audit)
			cfg.Audit = n.Auditor
		}
		closeAudit = func() error {
			if n.Auditor != nil {
				if err := n.Auditor.Close(); err != nil {
					return err
				}
			}
			return cp.Close()
		}
	}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	srv := api.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	n.Addr = ln.Addr().String()
	n.Roots = x509.NewCertPool()
	n.Roots.AddCert(cert.Leaf)
	var once sync.Once
	n.stop = func() { // the shutdown order of cmd/kmsledger: server, auditor, checkpoints, ledger
		once.Do(func() {
			cancel()
			<-done
			if err := closeAudit(); err != nil {
				tb.Error(err)
			}
			n.Proj.Close()
			n.Store.Close()
		})
	}
	tb.Cleanup(n.stop)
	return n
}

// Stop stops the node (again: a no-op).
func (n *Node) Stop() { n.stop() }

// Client returns a client of the node authenticated with apiKey ("" = root).
func (n *Node) Client(tb testing.TB, apiKey string) *client.Client {
	tb.Helper()
	if apiKey == "" {
		apiKey = n.RootKey
	}
	c, err := client.New(client.Config{Endpoints: []string{n.Addr}, APIKey: apiKey, RootCAs: n.Roots, Timeout: 30 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// Identity returns the h1: identity of an API key.
func Identity(tb testing.TB, apiKey string) string {
	tb.Helper()
	signer, err := wire.ParseAPIKey(apiKey)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := wire.Identity(signer.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// NewIdentity returns a fresh API key and its identity.
func NewIdentity(tb testing.TB) (apiKey, id string) {
	tb.Helper()
	k, err := wire.GenerateAPIKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k, Identity(tb, k)
}
