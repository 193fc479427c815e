package api

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"testing"

	"github.com/kmsledger/kmsledger/api/wire"
)

// TestCallerCachedPerConnection: the identity computed for a connection's
// certificate is reused for its requests, and a request whose leaf is
// another certificate gets that certificate's identity, never the cached
// one.
func TestCallerCachedPerConnection(t *testing.T) {
	cert := func() (*x509.Certificate, string) {
		k, err := wire.GenerateAPIKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := wire.ParseAPIKey(k)
		if err != nil {
			t.Fatal(err)
		}
		c, err := wire.ClientCertificate(s)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf, wire.IdentityFromCert(leaf)
	}
	a, idA := cert()
	b, idB := cert()
	conn := connContext(context.Background(), nil)
	req := func(leaf *x509.Certificate) string {
		r := httptest.NewRequest("GET", "/", nil).WithContext(conn)
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
		return callerOf(r)
	}
	if got := req(a); got != idA {
		t.Fatalf("callerOf(a) = %q, want %q", got, idA)
	}
	if got := req(a); got != idA {
		t.Fatalf("callerOf(a) again = %q, want %q", got, idA)
	}
	if got := req(b); got != idB {
		t.Fatalf("callerOf(b) on the same connection context = %q, want %q (not the cached identity)", got, idB)
	}
	r := httptest.NewRequest("GET", "/", nil).WithContext(conn)
	if got := callerOf(r); got != "" {
		t.Fatalf("callerOf(no certificate) = %q, want none", got)
	}
}
