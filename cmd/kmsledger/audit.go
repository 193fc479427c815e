package main

// Offline audit commands on a stopped server's data directory: verify the
// hash chains and signed checkpoints, export them for outsiders, print the
// checkpoint public key; and verify an export without the data directory
// or the HSM.

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
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// errVerify reports a history that does not verify (exit status 1).
var errVerify = errors.New("audit verification FAILED")

// auditLocalSubcommands returns the audit subcommands that read a data
// directory or an export file.
func auditLocalSubcommands() []*cli.Command {
	hsmFlags := func() []cli.Flag {
		return []cli.Flag{
			&cli.StringFlag{Name: "hsm-key", EnvVars: hsmKeyEnvVars(), Usage: "software HSM key (prefer the environment variable)"},
			&cli.StringFlag{Name: "config", EnvVars: []string{"KMSLEDGER_CONFIG"}, Usage: "server configuration file, for its HSMs and data dir"},
		}
	}
	return []*cli.Command{
		{
			Name:      "verify",
			Usage:     "recompute the hash chains and check every signed checkpoint of a stopped server's data dir (or of an export with --file)",
			ArgsUsage: "[DIR]",
			Flags: append(hsmFlags(),
				&cli.Uint64Flag{Name: "from", Usage: "start at this LEDGER sequence (its Prev header is checked by the next checkpoint)"},
				&cli.StringFlag{Name: "file", Usage: "verify this export (from `audit export`) instead of a data dir"},
				&cli.StringFlag{Name: "public-key", Usage: "with --file: the checkpoint public key(s), PEM (from `audit export-key`)"},
			),
			Action: auditVerifyAction,
		},
		{
			Name:      "export",
			Usage:     "write the ledger and audit records with their hashes and checkpoints as JSON lines, for verification by outsiders",
			ArgsUsage: "[DIR]",
			Flags: append(hsmFlags(),
				&cli.StringFlag{Name: "since", Usage: "disclose events and records from this time (RFC 3339 or 2006-01-02)"},
				&cli.StringFlag{Name: "until", Usage: "disclose events and records before this time"},
				&cli.StringFlag{Name: "enclave", Aliases: []string{"e"}, Usage: "disclose only this enclave's events and records"},
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to this file instead of standard output"},
			),
			Action: auditExportAction,
		},
		{
			Name:      "export-key",
			Usage:     "print the checkpoint public key(s) that the HSM vouches for (PEM)",
			ArgsUsage: "[DIR]",
			Flags:     hsmFlags(),
			Action:    auditExportKeyAction,
		},
	}
}

// auditDir returns the data dir of an offline audit command.
func auditDir(c *cli.Context, conf *config.Config) (string, error) {
	pos, err := args(c, 0, 1)
	if err != nil {
		return "", err
	}
	switch {
	case first(pos) != "":
		return first(pos), nil
	case conf != nil && conf.Dir != "":
		return conf.Dir, nil
	}
	return "kmsledger-data", nil
}

// openAudit opens dir read-only (refusing corrupt message blocks).
func openAudit(ctx context.Context, dir string) (*ledger.Store, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	s, err := ledger.Open(ctx, ledger.Config{Dir: dir, ReadOnly: true})
	if errors.Is(err, ledger.ErrLocked) {
		return nil, fmt.Errorf("%s is in use: stop the server first: %w", dir, err)
	}
	return s, err
}

// trustedKeys unseals the REK with the configured HSMs and returns the
// signing keys it vouches for.
func trustedKeys(ctx context.Context, c *cli.Context, store *ledger.Store, conf *config.Config) (map[string]ed25519.PublicKey, error) {
	log := slog.New(slog.DiscardHandler)
	if len(conf.HSM) == 0 {
		return nil, errors.New("no HSM: set KMSLEDGER_HSM_KEY or --config; the HSM vouches for the checkpoint key")
	}
	hsms, errs := node.OpenHSMs(ctx, conf.HSM, log)
	defer hsms.Close()
	if len(hsms.List) == 0 {
		return nil, errors.Join(errs...)
	}
	proj, err := projections.Open(ctx, store, nil, log)
	if err != nil {
		return nil, err
	}
	defer proj.Close()
	rek, _, err := commands.Unseal(ctx, store, proj, hsms.List, commands.InitParams{})
	if err != nil {
		return nil, err
	}
	keys, bad, err := commands.TrustedSigningKeys(ctx, store, rek)
	for _, e := range bad {
		fmt.Fprintf(c.App.ErrWriter, "warning: %v\n", e)
	}
	return keys, err
}

func auditConfig(c *cli.Context) (*config.Config, error) {
	return loadServerConfig(c.String("config"), hsmKeyOnly(c))
}

func auditVerifyAction(c *cli.Context) error {
	ctx := c.Context
	if f := c.String("file"); f != "" {
		return verifyExportFile(c, f)
	}
	conf, err := auditConfig(c)
	if err != nil {
		return err
	}
	dir, err := auditDir(c, conf)
	if err != nil {
		return err
	}
	store, err := openAudit(ctx, dir)
	if err != nil {
		if errors.Is(err, ledger.ErrCorruptBlock) {
			return fmt.Errorf("%w: %w", errVerify, err)
		}
		return err
	}
	defer store.Close()
	keys, kerr := trustedKeys(ctx, c, store, conf)
	if kerr != nil {
		fmt.Fprintf(c.App.ErrWriter, "warning: no trusted checkpoint key (%v); checking the chains only\n", kerr)
	}
	rep, err := store.Verify(ctx, ledger.VerifyOptions{From: c.Uint64("from"), Keys: keys})
	printReport(c.App.Writer, rep)
	if err != nil {
		return fmt.Errorf("%w: %w", errVerify, err)
	}
	if kerr != nil {
		return fmt.Errorf("%w: %w", errVerify, kerr)
	}
	fmt.Fprintln(c.App.Writer, "OK")
	return nil
}

// verifyExportFile verifies an export with the given public keys.
func verifyExportFile(c *cli.Context, file string) error {
	if c.String("public-key") == "" {
		return fmt.Errorf("%w: --file needs --public-key", errUsage)
	}
	keys, err := readPublicKeys(c.String("public-key"))
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := ledger.VerifyExport(bufio.NewReader(f), ledger.VerifyOptions{Keys: keys})
	printReport(c.App.Writer, rep)
	if err != nil {
		return fmt.Errorf("%w: %w", errVerify, err)
	}
	fmt.Fprintln(c.App.Writer, "OK")
	return nil
}

// printReport says what was checked, and what is chained but unsigned.
func printReport(w io.Writer, rep *ledger.VerifyReport) {
	if rep == nil {
		return
	}
	for _, s := range []ledger.StreamReport{rep.Ledger, rep.Audit} {
		if s.Last < s.From {
			fmt.Fprintf(w, "%-6s empty\n", s.Stream)
			continue
		}
		fmt.Fprintf(w, "%-6s seq %d..%d, signed through %d\n", s.Stream, s.From, s.Last, s.SignedThrough)
		if s.SignedThrough < s.Last {
			fmt.Fprintf(w, "       seq %d..%d are chained but after the last checkpoint: not yet signed\n", max(s.SignedThrough+1, s.From), s.Last)
		}
	}
	fmt.Fprintf(w, "checkpoints verified: %d; signing keys recorded: %v\n", rep.Checkpoints, rep.SigningKeys)
}

func auditExportAction(c *cli.Context) error {
	conf, err := auditConfig(c)
	if err != nil {
		return err
	}
	dir, err := auditDir(c, conf)
	if err != nil {
		return err
	}
	var f ledger.ExportFilter
	if f.Since, err = parseAuditTime("since", c.String("since")); err != nil {
		return err
	}
	if f.Until, err = parseAuditTime("until", c.String("until")); err != nil {
		return err
	}
	f.Enclave = c.String("enclave")
	store, err := openAudit(c.Context, dir)
	if err != nil {
		return err
	}
	defer store.Close()
	out := c.App.Writer
	if o := c.String("output"); o != "" {
		file, err := os.OpenFile(o, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		defer file.Close()
		out = file
	}
	events, records, err := store.Export(c.Context, out, f)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "exported: %d events and %d audit records disclosed\n", events, records)
	return nil
}

// parseAuditTime reads --since/--until: RFC 3339 or a date (UTC).
func parseAuditTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: --%s %q: want RFC 3339 or 2006-01-02", errUsage, flag, s)
}

func auditExportKeyAction(c *cli.Context) error {
	conf, err := auditConfig(c)
	if err != nil {
		return err
	}
	dir, err := auditDir(c, conf)
	if err != nil {
		return err
	}
	store, err := openAudit(c.Context, dir)
	if err != nil {
		return err
	}
	defer store.Close()
	keys, err := trustedKeys(c.Context, c, store, conf)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return errors.New("the ledger records no checkpoint signing key the HSM vouches for")
	}
	for id, pub := range keys {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return err
		}
		if err := pem.Encode(c.App.Writer, &pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Key-Id": id}, Bytes: der}); err != nil {
			return err
		}
	}
	return nil
}

// readPublicKeys reads Ed25519 public keys (PEM "PUBLIC KEY" blocks).
func readPublicKeys(file string) (map[string]ed25519.PublicKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
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
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an Ed25519 public key", file)
		}
		keys[ledger.KeyID(pub)] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no PEM PUBLIC KEY block", file)
	}
	return keys, nil
}
