package api_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
)

// forgedChain returns a client certificate chain [attacker's self-signed
// CA certificate, certificate carrying victim's public key issued by that
// CA] with the attacker's private key: the handshake proves only the key
// of the first certificate.
func forgedChain(t testing.TB, victim any) tls.Certificate {
	t.Helper()
	_, attacker, err := ed25519.GenerateKey(rand.Reader)
	mustOK(t, err)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, attacker.Public(), attacker)
	mustOK(t, err)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "victim"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, victim, attacker)
	mustOK(t, err)
	return tls.Certificate{Certificate: [][]byte{caDER, leafDER}, PrivateKey: attacker}
}

// TestForgedChainIsNotRoot: a chain whose first certificate is the
// attacker's own (a CA) and whose second carries root's public key acts
// as the attacker, on the KES API and on every other; root's own
// certificate followed by an extra CA certificate is still root.
func TestForgedChainIsNotRoot(t *testing.T) {
	s := startStackKES(t)
	signer, err := wire.ParseAPIKey(s.RootKey)
	mustOK(t, err)
	forged := forgedChain(t, signer.Public())
	const denied = "not authorized: insufficient permissions"

	kes := s.kesClient("", forged)
	kes.fails("PUT", "/v1/key/create/forged", "", 403, denied)
	kes.fails("GET", "/v1/identity/self/describe", "", 403, denied)
	kes.fails("GET", "/v1/status", "", 403, denied)
	// The same listener serves the kms, admin and HSM APIs.
	kes.fails("GET", "/v1/admin/hsm", "", 403, "access denied: insufficient permissions")
	kes.fails("GET", "/v1/admin/"+kesEnclave+"/keys", "", 403, "access denied: insufficient permissions")
	kes.fails("GET", "/v1/ledger/state?seq=1&enclave="+kesEnclave, "", 403, "access denied: insufficient permissions")
	if _, err := s.root.KeyStatus(ctx, kesEnclave, "forged", 0); err == nil {
		t.Fatal("the forged chain created key forged")
	}

	// Friendly: root's certificate first, then any CA certificate.
	rootCert, err := wire.ClientCertificate(signer)
	mustOK(t, err)
	extra := forgedChain(t, signer.Public())
	rootCert.Certificate = append(rootCert.Certificate, extra.Certificate[0])
	root := s.kesClient("", rootCert)
	root.ok("PUT", "/v1/key/create/genuine", "", nil)
	root.ok("GET", "/v1/admin/hsm", "", nil)
}
