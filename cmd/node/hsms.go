package node

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/api/metrics"
	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm/pkcs11"
	"github.com/kmsledger/kmsledger/hsm/remotekms"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
)

// HSMs are the configured HSMs that could be opened.
type HSMs struct {
	List   []commands.NamedHSM
	closer []func() error
}

// Close closes every opened HSM that holds resources (a PKCS#11
// session, a remote connection).
func (o *HSMs) Close() {
	for _, c := range o.closer {
		c()
	}
}

// OpenHSMs opens every configured HSM, in order. The backend is chosen
// here, by a switch: there is no registry. An HSM that fails to open is
// reported (by name, with the reason) and left out; the caller decides
// whether the ones that opened are enough.
func OpenHSMs(ctx context.Context, cfgs []config.HSM, log *slog.Logger) (*HSMs, []error) {
	o := &HSMs{}
	var errs []error
	for _, c := range cfgs {
		h, err := openHSM(ctx, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("HSM %q: %w", c.Name, err))
			log.Warn("HSM not available", "hsm", c.Name, "err", err)
			continue
		}
		if cl, ok := h.W.(interface{ Close() error }); ok {
			o.closer = append(o.closer, cl.Close)
		}
		h.W = metrics.CountHSM(h.W) // HSM calls per HSM in the metrics
		o.List = append(o.List, h)
	}
	return o, errs
}

func openHSM(ctx context.Context, c config.HSM) (commands.NamedHSM, error) {
	switch {
	case c.Soft != nil:
		k, err := softkey.Parse(c.Soft.Key)
		if err != nil {
			return commands.NamedHSM{}, err
		}
		return commands.NamedHSM{Name: c.Name, Kind: ledger.HSMKindSoft, W: k}, nil
	case c.PKCS11 != nil:
		pin, err := PIN(c.PKCS11)
		if err != nil {
			return commands.NamedHSM{}, err
		}
		h, err := pkcs11.Open(pkcs11.Config{Module: c.PKCS11.Module, TokenLabel: c.PKCS11.Token, Slot: c.PKCS11.Slot, PIN: pin, KeyLabel: c.PKCS11.Key})
		if err != nil {
			return commands.NamedHSM{}, err
		}
		return commands.NamedHSM{Name: c.Name, Kind: ledger.HSMKindPKCS11, W: h}, nil
	case c.Remote != nil:
		h, err := openRemote(ctx, c.Remote)
		if err != nil {
			return commands.NamedHSM{}, err
		}
		return commands.NamedHSM{Name: c.Name, Kind: ledger.HSMKindRemote, W: h}, nil
	}
	return commands.NamedHSM{}, errors.New("no backend configured")
}

// PIN returns the PIN of a PKCS#11 token: pin, or the first line of
// pin_file.
func PIN(c *config.PKCS11) (string, error) {
	if c.PINFile == "" {
		return c.PIN, nil
	}
	b, err := os.ReadFile(c.PINFile)
	if err != nil {
		return "", fmt.Errorf("read pin_file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// openRemote opens a key of another key manager as HSM.
func openRemote(ctx context.Context, c *config.Remote) (*remotekms.HSM, error) {
	cfg := remotekms.Config{Endpoints: c.Server, Enclave: c.Enclave, Key: c.Key, APIKey: c.AuthKey, Timeout: 10 * time.Second}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("read ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca %s: no PEM certificate", c.CA)
		}
	}
	return remotekms.Open(ctx, cfg)
}
