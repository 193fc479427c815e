// The HTTP client for Vault, built from keystore.vault.tls.

package migrate

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// vaultTimeout bounds one Vault request; a migration makes many small ones.
const vaultTimeout = 30 * time.Second

// NewVaultHTTPClient returns an HTTP client for Vault configured as KES's
// keystore.vault.tls: CA is a PEM file or a directory of PEM files (""
// means the system roots); Cert and Key, if set, are the client
// certificate and its private key. TLS 1.2 is the minimum.
func NewVaultHTTPClient(c VaultTLS) (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CA != "" {
		pool, err := loadCAs(c.CA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if c.Cert != "" || c.Key != "" {
		crt, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: vault client certificate: %v", ErrConfig, err)
		}
		cfg.Certificates = []tls.Certificate{crt}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr, Timeout: vaultTimeout}, nil
}

func loadCAs(p string) (*x509.CertPool, error) {
	files := []string{p}
	if fi, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("%w: vault CA: %v", ErrConfig, err)
	} else if fi.IsDir() {
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("%w: vault CA: %v", ErrConfig, err)
		}
		files = files[:0]
		for _, e := range entries {
			if !e.IsDir() {
				files = append(files, filepath.Join(p, e.Name()))
			}
		}
	}
	pool := x509.NewCertPool()
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && !pool.AppendCertsFromPEM(b) {
			err = errors.New("no PEM certificate")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", f, err))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: vault CA: %s holds no files", ErrConfig, p)
	}
	if len(errs) == len(files) {
		return nil, fmt.Errorf("%w: vault CA: %w", ErrConfig, errors.Join(errs...))
	}
	return pool, nil
}
