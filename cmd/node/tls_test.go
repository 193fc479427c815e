package node

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestGeneratedCertificateIsLeaf: the certificate made on first start is a
// self-signed ECDSA leaf (CA:FALSE, DigitalSignature only, ServerAuth, the
// loopback names and the listen address), it is kept and reused, and a
// client that puts DIR/tls/cert.pem into its root pool (as the CLI's --ca,
// kms-go and MinIO's certs/CAs do) completes a real handshake with it, by
// name and by IP address. A client without it fails.
func TestGeneratedCertificateIsLeaf(t *testing.T) {
	dir := t.TempDir()
	const addr = "192.0.2.7:7373"
	cert, caFile, err := serverCertificate(dir, addr, "", "")
	if err != nil {
		t.Fatalf("serverCertificate err = %v", err)
	}
	if want := filepath.Join(dir, "tls", "cert.pem"); caFile != want {
		t.Errorf("caFile = %q, want %q", caFile, want)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	checkLeafFields(t, leaf)
	pool, err := loadCAs(caFile)
	if err != nil {
		t.Fatal(err)
	}
	checkLeafCannotSign(t, cert, leaf, pool)

	// Reused on the next start, not regenerated.
	again, _, err := serverCertificate(dir, addr, "", "")
	if err != nil || !slices.Equal(again.Certificate[0], cert.Certificate[0]) {
		t.Errorf("second serverCertificate = new certificate, %v; want the stored one", err)
	}

	checkHandshakes(t, cert, pool)
	if _, err := os.Stat(filepath.Join(dir, "tls", "key.pem")); err != nil {
		t.Errorf("key.pem: %v", err)
	}
}

// checkLeafFields: leaf is a self-signed ECDSA leaf (CA:FALSE,
// DigitalSignature only, ServerAuth) for the loopback names and
// 192.0.2.7.
func checkLeafFields(t *testing.T, leaf *x509.Certificate) {
	t.Helper()
	if leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Errorf("IsCA = %v, BasicConstraintsValid = %v, want a leaf with CA:FALSE", leaf.IsCA, leaf.BasicConstraintsValid)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %d, want DigitalSignature only (%d)", leaf.KeyUsage, x509.KeyUsageDigitalSignature)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("ExtKeyUsage = %v, want ServerAuth", leaf.ExtKeyUsage)
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("public key %T, want ECDSA", leaf.PublicKey)
	}
	if !slices.Contains(leaf.DNSNames, "localhost") {
		t.Errorf("DNSNames = %v, want localhost", leaf.DNSNames)
	}
	for _, ip := range []string{"127.0.0.1", "::1", "192.0.2.7"} {
		if !slices.ContainsFunc(leaf.IPAddresses, func(x net.IP) bool { return x.Equal(net.ParseIP(ip)) }) {
			t.Errorf("IPAddresses = %v, want %s", leaf.IPAddresses, ip)
		}
	}
}

// checkLeafCannotSign: the key cannot vouch for another certificate: one
// it signs (as an attacker holding a copy of key.pem might) does not
// verify against a pool that trusts cert.pem.
func checkLeafCannotSign(t *testing.T, cert tls.Certificate, leaf *x509.Certificate, pool *x509.CertPool) {
	t.Helper()
	child := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "evil"}, DNSNames: []string{"evil.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	signer := cert.PrivateKey.(*ecdsa.PrivateKey)
	der, err := x509.CreateCertificate(rand.Reader, child, leaf, &signer.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	childCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := childCert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "evil.example"}); err == nil {
		t.Errorf("a certificate signed by the server key verifies against cert.pem, want an error")
	}
}

// checkHandshakes serves cert and checks that a client trusting pool
// completes a handshake by name and by IP address, and that one without
// it, or for another name, fails.
func checkHandshakes(t *testing.T, cert tls.Certificate, pool *x509.CertPool) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				c.(*tls.Conn).Handshake()
			}()
		}
	}()
	for _, name := range []string{"localhost", "127.0.0.1"} {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Errorf("handshake as %s with cert.pem as root: %v", name, err)
			continue
		}
		c.Close()
	}
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost"}); err == nil {
		c.Close()
		t.Errorf("handshake without cert.pem as root succeeded, want an unknown-authority error")
	}
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "example.com"}); err == nil {
		c.Close()
		t.Errorf("handshake for a name not in the certificate succeeded")
	}
}

// loadCAs is what the CLI's --ca does: the system roots plus the
// certificates of a PEM file.
func loadCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("no PEM certificate")
	}
	return pool, nil
}
