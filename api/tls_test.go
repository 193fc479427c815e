package api_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/nodetest"
)

// handshake dials the node with cfg (roots and server name filled in) and
// returns the negotiated state.
func handshake(t *testing.T, n *nodetest.Node, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	cfg.RootCAs, cfg.ServerName = n.Roots, "127.0.0.1"
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", n.Addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.ConnectionState(), nil
}

func isAEAD(name string) bool {
	return strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")
}

// TestTLSAEADSuitesOnly offers the server every TLS 1.2 cipher suite Go
// knows, one at a time: only ECDHE with AES-GCM or ChaCha20-Poly1305
// completes a handshake (the node's certificate is ECDSA, so only the
// ECDSA ones); CBC, RC4, 3DES and RSA key exchange fail. A client offering
// only CBC suites fails; TLS 1.3 works; TLS 1.1 does not.
func TestTLSAEADSuitesOnly(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	all := append(tls.CipherSuites(), tls.InsecureCipherSuites()...)
	ok := 0
	for _, s := range all {
		if !slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			continue
		}
		want := isAEAD(s.Name) && strings.HasPrefix(s.Name, "TLS_ECDHE_ECDSA_")
		st, err := handshake(t, n, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{s.ID}})
		switch {
		case want && err != nil:
			t.Errorf("TLS 1.2 with %s: handshake err = %v, want success", s.Name, err)
		case want && st.CipherSuite != s.ID:
			t.Errorf("TLS 1.2 with %s: negotiated %s", s.Name, tls.CipherSuiteName(st.CipherSuite))
		case !want && err == nil:
			t.Errorf("TLS 1.2 with only %s: handshake succeeded, want failure", s.Name)
		case want:
			ok++
		}
	}
	if ok != 3 {
		t.Errorf("%d ECDSA AEAD suites negotiated, want 3 (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305)", ok)
	}
	var cbc []uint16
	for _, s := range all {
		if strings.Contains(s.Name, "_CBC_") {
			cbc = append(cbc, s.ID)
		}
	}
	if len(cbc) == 0 {
		t.Fatal("no CBC suites known to crypto/tls")
	}
	if _, err := handshake(t, n, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: cbc}); err == nil {
		t.Errorf("TLS 1.2 offering only CBC suites: handshake succeeded, want failure")
	}
	if _, err := handshake(t, n, &tls.Config{MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}); err == nil {
		t.Errorf("TLS 1.1: handshake succeeded, want failure")
	}
	st, err := handshake(t, n, &tls.Config{MinVersion: tls.VersionTLS13})
	if err != nil || st.Version != tls.VersionTLS13 {
		t.Errorf("TLS 1.3: version %#x, err = %v, want TLS 1.3, nil", st.Version, err)
	}
	// A default client (kms-go, MinIO) gets TLS 1.3 with an AEAD suite.
	st, err = handshake(t, n, &tls.Config{})
	if err != nil || st.Version != tls.VersionTLS13 || !isAEAD(tls.CipherSuiteName(st.CipherSuite)) {
		t.Errorf("default client: version %#x, suite %s, err = %v", st.Version, tls.CipherSuiteName(st.CipherSuite), err)
	}
}

// TestTLSServerCertificateIsLeaf: the node's self-signed certificate is a
// leaf (not a CA) and a client that puts it into its root pool verifies it.
func TestTLSServerCertificateIsLeaf(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	st, err := handshake(t, n, &tls.Config{})
	if err != nil {
		t.Fatalf("handshake with the certificate as root: %v", err)
	}
	leaf := st.PeerCertificates[0]
	if leaf.IsCA || leaf.KeyUsage&x509.KeyUsageCertSign != 0 {
		t.Errorf("server certificate IsCA = %v, KeyUsage = %#x, want a leaf without CertSign", leaf.IsCA, leaf.KeyUsage)
	}
	if len(st.VerifiedChains) != 1 || len(st.VerifiedChains[0]) != 1 {
		t.Errorf("verified chains = %d, want the one self-signed leaf", len(st.VerifiedChains))
	}
}
