package node

// Offline audit of a stopped node's data dir: open the ledger read-only,
// unseal the REK with the configured HSMs for the checkpoint keys they
// vouch for, verify the hash chains and checkpoints, export them; and
// verify an export with PEM public keys, without the data dir or an HSM.

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// ErrVerify is wrapped by the errors of a history that does not verify.
var ErrVerify = errors.New("audit verification FAILED")

// ErrNoHSM is returned when no HSM is configured to vouch for the
// checkpoint keys.
var ErrNoHSM = errors.New("no HSM: set KMSLEDGER_HSM_KEY or --config; the HSM vouches for the checkpoint key")

// OpenOffline opens the ledger in dir read-only, refusing corrupt message
// blocks (ledger.ErrCorruptBlock) and a dir a running server holds.
func OpenOffline(ctx context.Context, dir string) (*ledger.Store, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	s, err := ledger.Open(ctx, ledger.Config{Dir: dir, ReadOnly: true})
	if errors.Is(err, ledger.ErrLocked) {
		return nil, fmt.Errorf("%s is in use: stop the server first: %w", dir, err)
	}
	return s, err
}

// TrustedKeys unseals the REK of store with the HSMs and returns the
// checkpoint signing keys it vouches for; rejected lists the recorded
// signing keys it does not vouch for.
func TrustedKeys(ctx context.Context, store *ledger.Store, hsms []config.HSM) (keys map[string]ed25519.PublicKey, rejected []error, err error) {
	log := slog.New(slog.DiscardHandler)
	if len(hsms) == 0 {
		return nil, nil, ErrNoHSM
	}
	opened, errs := OpenHSMs(ctx, hsms, log)
	defer opened.Close()
	if len(opened.List) == 0 {
		return nil, nil, errors.Join(errs...)
	}
	proj, err := projections.Open(ctx, store, nil, log)
	if err != nil {
		return nil, nil, err
	}
	defer proj.Close()
	rek, _, err := commands.Unseal(ctx, store, proj, opened.List, commands.InitParams{})
	if err != nil {
		return nil, nil, err
	}
	return commands.TrustedSigningKeys(ctx, store, rek)
}

// OfflineVerify is the outcome of VerifyOffline.
type OfflineVerify struct {
	Report   *ledger.VerifyReport // what was checked (nil if nothing was)
	Rejected []error              // recorded signing keys the HSMs do not vouch for
	// KeyErr, if set, says why no checkpoint key is trusted: only the
	// chains were checked, and VerifyOffline fails.
	KeyErr error
}

// VerifyOffline recomputes the hash chains of the stopped node's data
// dir from the LEDGER sequence from and checks every signed checkpoint
// against the keys the HSMs vouch for. A history that does not verify, a
// corrupt block, or no trusted key gives an error wrapping ErrVerify,
// with the report of what was checked.
func VerifyOffline(ctx context.Context, dir string, hsms []config.HSM, from uint64) (OfflineVerify, error) {
	var out OfflineVerify
	store, err := OpenOffline(ctx, dir)
	if err != nil {
		if errors.Is(err, ledger.ErrCorruptBlock) {
			return out, fmt.Errorf("%w: %w", ErrVerify, err)
		}
		return out, err
	}
	defer store.Close()
	keys, rejected, kerr := TrustedKeys(ctx, store, hsms)
	out.Rejected, out.KeyErr = rejected, kerr
	out.Report, err = store.Verify(ctx, ledger.VerifyOptions{From: from, Keys: keys})
	if err != nil {
		return out, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	if kerr != nil {
		return out, fmt.Errorf("%w: %w", ErrVerify, kerr)
	}
	return out, nil
}

// VerifyExport verifies an export (from ExportOffline) read from r with
// the checkpoint public keys; a failure wraps ErrVerify.
func VerifyExport(r io.Reader, keys map[string]ed25519.PublicKey) (*ledger.VerifyReport, error) {
	rep, err := ledger.VerifyExport(bufio.NewReader(r), ledger.VerifyOptions{Keys: keys})
	if err != nil {
		return rep, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	return rep, nil
}

// ExportOffline writes the ledger and audit records of the stopped node's
// data dir that f discloses, with their hashes and checkpoints, as JSON
// lines to w, or, if file is set, to that new file (mode 0600; an
// existing file is refused, and nothing is created if dir cannot be
// opened). It returns how many events and records it disclosed.
func ExportOffline(ctx context.Context, dir string, f ledger.ExportFilter, file string, w io.Writer) (events, records int, err error) {
	store, err := OpenOffline(ctx, dir)
	if err != nil {
		return 0, 0, err
	}
	defer store.Close()
	if file != "" {
		out, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return 0, 0, err
		}
		defer out.Close()
		w = out
	}
	return store.Export(ctx, w, f)
}

// OfflineKeys returns the checkpoint public keys the HSMs vouch for in
// the stopped node's data dir (an error if there is none), and the
// recorded signing keys they do not vouch for.
func OfflineKeys(ctx context.Context, dir string, hsms []config.HSM) (keys map[string]ed25519.PublicKey, rejected []error, err error) {
	store, err := OpenOffline(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	defer store.Close()
	keys, rejected, err = TrustedKeys(ctx, store, hsms)
	if err != nil {
		return nil, rejected, err
	}
	if len(keys) == 0 {
		return nil, rejected, errors.New("the ledger records no checkpoint signing key the HSM vouches for")
	}
	return keys, rejected, nil
}

// WritePublicKeys writes keys to w as PEM "PUBLIC KEY" blocks with a
// Key-Id header, as ParsePublicKeys reads them.
func WritePublicKeys(w io.Writer, keys map[string]ed25519.PublicKey) error {
	for id, pub := range keys {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return err
		}
		if err := pem.Encode(w, &pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Key-Id": id}, Bytes: der}); err != nil {
			return err
		}
	}
	return nil
}

// ParsePublicKeys reads the Ed25519 public keys of the PEM "PUBLIC KEY"
// blocks in b (other blocks are skipped); name prefixes its errors.
func ParsePublicKeys(name string, b []byte) (map[string]ed25519.PublicKey, error) {
	keys := map[string]ed25519.PublicKey{}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "PUBLIC KEY" {
			continue
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an Ed25519 public key", name)
		}
		keys[ledger.KeyID(pub)] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no PEM PUBLIC KEY block", name)
	}
	return keys, nil
}
