package node

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/kmsledger/kmsledger/commands"
)

// startAudit unseals (or creates) the checkpoint signing key, starts the
// checkpoints and the Auditor, as configured. Close closes the Auditor
// (storing every accepted record; it logs how many were stored, dropped
// and lost) and then the checkpoints (writing a last one that covers
// it).
func (n *Node) startAudit(ctx context.Context) error {
	a, cp := n.cfg.Audit, n.cfg.Checkpoints
	if a != nil && (a.Batch < 0 || a.Interval < 0 || a.Wait < 0) || cp != nil && (cp.Events < 0 || cp.Interval < 0) {
		return errors.New("audit and checkpoint settings must not be negative")
	}
	if cp != nil {
		if err := n.startCheckpoints(ctx); err != nil {
			return err
		}
	}
	if a == nil {
		return nil
	}
	ac := *a
	if ac.Logger == nil {
		ac.Logger = n.log
	}
	n.Auditor = n.Store.NewAuditor(ac)
	n.log.Info("auditing every request", "interval", ac.Interval, "batch", ac.Batch, "sync", ac.Sync, "wait", ac.Wait)
	n.onClose(n.stopAuditor)
	return nil
}

// startCheckpoints unseals (or creates) the checkpoint signing key and
// starts the checkpoints.
func (n *Node) startCheckpoints(ctx context.Context) error {
	signer, err := commands.SigningKey(ctx, n.Store, n.Proj, n.rek, n.RootID)
	if err != nil {
		return fmt.Errorf("checkpoint signing key: %w", err)
	}
	n.SigningKey, n.signer = signer.Public().(ed25519.PublicKey), signer
	cpc := *n.cfg.Checkpoints
	if cpc.Logger == nil {
		cpc.Logger = n.log
	}
	c := n.Store.StartCheckpoints(signer, cpc)
	n.onClose(func() error {
		err := c.Close()
		if err != nil {
			n.log.Error("last checkpoint", "err", err)
		}
		return err
	})
	return nil
}

// stopAuditor closes the Auditor and logs what it stored.
func (n *Node) stopAuditor() error {
	err := n.Auditor.Close()
	st := n.Auditor.Stats()
	attrs := []any{"stored", st.Stored, "dropped", st.Dropped, "lost", st.Lost, "busy", st.Busy}
	if err != nil || st.Lost > 0 {
		n.log.Error("audit stopped; records lost", append(attrs, "err", err)...)
	} else {
		n.log.Info("audit stopped; every accepted record stored", attrs...)
	}
	return err
}

// clientCAs reads the PEM file of the CAs whose client certificates are
// accepted ("" = any client certificate).
func clientCAs(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls.client_ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls.client_ca %s: no PEM certificate", file)
	}
	return pool, nil
}

// certificate returns the configured server certificate, or loads or
// makes it.
func (n *Node) certificate() (cert tls.Certificate, caFile string, err error) {
	if n.cfg.Certificate != nil {
		return *n.cfg.Certificate, "", nil
	}
	return serverCertificate(n.cfg.Dir, n.cfg.Addr, n.cfg.CertFile, n.cfg.KeyFile)
}
