package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/ledger/ledgertest"
	"github.com/kmsledger/kmsledger/projections"
)

// flakyHSM injects an outage into a real software HSM key.
type flakyHSM struct {
	*softkey.Key
	down atomic.Bool
}

var errOutage = errors.New("remotekms: server unreachable: connection refused")

func (f *flakyHSM) Wrap(ctx context.Context, pt, aad []byte) ([]byte, error) {
	if f.down.Load() {
		return nil, errOutage
	}
	return f.Key.Wrap(ctx, pt, aad)
}

// TestHSMOutageReported: an HSM that fails after start is reported to
// root by /v1/health/ready (which stays 200: crypto goes on) and
// recovers; without a certificate, or with another one, the answer is
// the bare status, with no HSM name or error.
func TestHSMOutageReported(t *testing.T) {
	store := ledgertest.Open(t)
	ks, _ := softkey.Generate(rand.Reader)
	k, _ := softkey.Parse(ks)
	rootKey, err := wire.GenerateAPIKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := wire.ParseAPIKey(rootKey)
	rootID, _ := wire.Identity(signer.Public())
	proj, err := projections.Open(context.Background(), store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer proj.Close()
	if _, _, err := commands.Unseal(context.Background(), store, proj, []commands.NamedHSM{{Name: "soft", Kind: "soft", W: k}},
		commands.InitParams{RootIdentity: rootID, DefaultType: "AES256"}); err != nil {
		t.Fatal(err)
	}
	rootCert, _ := wire.ClientCertificate(signer)
	otherKey, _ := wire.GenerateAPIKey(rand.Reader)
	otherSigner, _ := wire.ParseAPIKey(otherKey)
	otherCert, _ := wire.ClientCertificate(otherSigner)

	f := &flakyHSM{Key: k}
	s := New(Config{Projection: proj, HSMs: []commands.NamedHSM{{Name: "remote", Kind: ledger.HSMKindRemote, W: f}}})
	routes := s.Routes()
	ready := func(c *tls.Certificate) (int, string, map[string]string) {
		req := httptest.NewRequest("GET", "/v1/health/ready", nil)
		if c != nil {
			req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.Leaf}}
		}
		rec := httptest.NewRecorder()
		routes.ServeHTTP(rec, req)
		var body struct{ HSM map[string]string }
		json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, rec.Body.String(), body.HSM
	}
	bare := func(when string) {
		t.Helper()
		for _, c := range []*tls.Certificate{nil, &otherCert} {
			if code, body, _ := ready(c); code != 200 || body != `{"status":"ready"}` {
				t.Fatalf("%s, not root: ready = %d %s, want 200 {\"status\":\"ready\"} only", when, code, body)
			}
		}
	}
	s.checkHSMs(context.Background())
	if code, _, hs := ready(&rootCert); code != 200 || hs["remote"] != "ok" {
		t.Fatalf("ready = %d %v, want 200 with remote ok", code, hs)
	}
	bare("HSM up")
	f.down.Store(true)
	s.checkHSMs(context.Background())
	if code, _, hs := ready(&rootCert); code != 200 || !strings.Contains(hs["remote"], "unreachable") {
		t.Fatalf("ready during outage = %d %v, want 200 reporting remote unreachable", code, hs)
	}
	bare("HSM down")
	f.down.Store(false)
	s.checkHSMs(context.Background())
	if _, _, hs := ready(&rootCert); hs["remote"] != "ok" {
		t.Fatalf("ready after recovery = %v, want ok", hs)
	}
}

func cert(t *testing.T, tmpl, parent *x509.Certificate, pub, priv any) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// TestClientCAChain: with a client CA, a certificate it issued is
// accepted even when expired (as MinIO's are after 90 days); a
// self-signed one is refused; no certificate is left to the routes.
func TestClientCAChain(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "clients"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-1000 * time.Hour), NotAfter: time.Now().Add(1000 * time.Hour)}
	ca := cert(t, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	expired := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "minio"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, NotBefore: time.Now().Add(-200 * time.Hour), NotAfter: time.Now().Add(-100 * time.Hour)}
	leaf := cert(t, expired, ca, &leafKey.PublicKey, caKey)
	if err := verifyClientChain([][]byte{leaf.Raw}, pool); err != nil {
		t.Fatalf("expired certificate of the client CA: %v, want accepted", err)
	}
	self := cert(t, expired, expired, &leafKey.PublicKey, leafKey)
	if err := verifyClientChain([][]byte{self.Raw}, pool); err == nil {
		t.Fatal("self-signed certificate accepted with a client CA configured")
	}
	if err := verifyClientChain(nil, pool); err != nil {
		t.Fatalf("no certificate: %v, want nil (routes decide)", err)
	}
}
