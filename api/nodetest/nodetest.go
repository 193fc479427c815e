// Package nodetest runs a whole kmsledger node in process for tests: a
// real embedded JetStream ledger in a temp dir, a software HSM key, real
// Tink, and the HTTPS API on a loopback port with a self-signed
// certificate. The node is opened by cmd/node, the function that opens
// the server's node: only flags and output are left out.
package nodetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// RootKeyLabel is the HKDF label the node derives the root API key from a
// software HSM key with.
const RootKeyLabel = node.RootAPIKeyLabel

// Options of a node; the zero value is a fresh node without auditing.
type Options struct {
	Dir    string // data dir; "" = a new temp dir
	HSMKey string // software HSM key; "" = a new one
	// Audit, if set, audits every request and checkpoints the ledger
	// (every CheckpointEvents events, 0 = the node's default), as the
	// server does.
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

	stop     func()
	stopOnce sync.Once
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

// Start starts a node and stops it when the test ends. The node is
// opened by node.Open, as the server opens its own, with the software HSM
// key as its only HSM (as `kmsledger server` with KMSLEDGER_HSM_KEY); it
// runs no background scheduler, since tests move the handler's clock.
func Start(tb testing.TB, o Options) *Node {
	tb.Helper()
	cert, err := certificate()
	if err != nil {
		tb.Fatal(err)
	}
	if o.Dir == "" {
		o.Dir = tb.TempDir()
	}
	if o.HSMKey == "" {
		if o.HSMKey, err = softkey.Generate(rand.Reader); err != nil {
			tb.Fatal(err)
		}
	}
	cfg := node.Config{Dir: o.Dir, HSMs: []config.HSM{{Name: "soft", Soft: &config.Soft{Key: o.HSMKey}}},
		Certificate: &cert, Version: "test", Audit: o.Audit, SchedulerInterval: -1, ConfigureAPI: o.Configure}
	if o.Audit != nil || o.Checkpoints {
		cfg.Checkpoints = &ledger.CheckpointConfig{Events: o.CheckpointEvents}
	}
	nd, err := node.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	// The first sealed-material pass runs beside serving and reads the
	// handler's clock, which tests set: start them after it.
	select {
	case <-nd.Reconciled():
	case <-time.After(time.Minute):
		nd.Close()
		tb.Fatal("the node's first reconcile pass did not end")
	}
	n := &Node{Dir: o.Dir, HSMKey: o.HSMKey, Certificate: cert, RootKey: nd.RootKey, RootID: nd.RootID,
		Store: nd.Store, Proj: nd.Proj, Handler: nd.Handler, Auditor: nd.Auditor}
	if nd.SigningKey != nil {
		n.SigningKeys = map[string]ed25519.PublicKey{ledger.KeyID(nd.SigningKey): nd.SigningKey}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		nd.Close()
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- nd.Serve(context.Background(), ln) }()
	n.Addr = ln.Addr().String()
	n.Roots = x509.NewCertPool()
	n.Roots.AddCert(cert.Leaf)
	n.stop = func() { // node.Close: server, auditor, checkpoints, ledger
		if err := nd.Close(); err != nil {
			tb.Error(err)
		}
		<-done
	}
	tb.Cleanup(n.Stop)
	return n
}

// Stop stops the node (again: a no-op).
func (n *Node) Stop() { n.stopOnce.Do(n.stop) }

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
