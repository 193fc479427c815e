package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// serverCertificate loads the configured certificate, or the self-signed
// one kept in DIR/tls (made on first start). caFile is the PEM file a
// client should trust ("" when the operator supplied a certificate).
func serverCertificate(dataDir, addr, certFile, keyFile string) (cert tls.Certificate, caFile string, err error) {
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return cert, "", errors.New("--tls-cert and --tls-key go together")
		}
		cert, err = tls.LoadX509KeyPair(certFile, keyFile)
		return cert, "", err
	}
	dir := filepath.Join(dataDir, "tls")
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if cert, err = tls.LoadX509KeyPair(certFile, keyFile); err == nil {
		return cert, certFile, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return cert, "", fmt.Errorf("load %s: %w", certFile, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return cert, "", err
	}
	certPEM, keyPEM, err := selfSigned(addr)
	if err != nil {
		return cert, "", err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return cert, "", err
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return cert, "", err
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	return cert, certFile, err
}

// selfSigned makes a self-signed P-256 leaf certificate for localhost, the
// loopback addresses, the host name and the listen address, valid for 10
// years. It is not a CA (basic constraints CA:FALSE, no certificate
// signing), so its key can sign nothing but TLS handshakes: a client that
// trusts it (MinIO: <certs-dir>/CAs; the CLI: --ca or KMSLEDGER_CA_FILE) trusts this one
// server and no certificate it could issue. Go, and so MinIO and kms-go,
// accept a leaf that is itself in the root pool.
func selfSigned(addr string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "kmsledger"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature, // ECDSA: no KeyEncipherment
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if h, err := os.Hostname(); err == nil && h != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if ip == nil && host != "" && host != "localhost" {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}
