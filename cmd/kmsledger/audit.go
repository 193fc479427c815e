package main

// Offline audit commands on a stopped server's data directory: verify the
// hash chains and signed checkpoints, export them for outsiders, print the
// checkpoint public key; and verify an export without the data directory
// or the HSM.

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/ledger"
)

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

// warnRejected prints the recorded signing keys the HSMs do not vouch for.
func warnRejected(c *cli.Context, rejected []error) {
	for _, e := range rejected {
		fmt.Fprintf(c.App.ErrWriter, "warning: %v\n", e)
	}
}

func auditConfig(c *cli.Context) (*config.Config, error) {
	return loadServerConfig(c.String("config"), hsmKeyOnly(c))
}

func auditVerifyAction(c *cli.Context) error {
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
	res, err := node.VerifyOffline(c.Context, dir, conf.HSM, c.Uint64("from"))
	warnRejected(c, res.Rejected)
	if res.KeyErr != nil {
		fmt.Fprintf(c.App.ErrWriter, "warning: no trusted checkpoint key (%v); checking the chains only\n", res.KeyErr)
	}
	printReport(c.App.Writer, res.Report)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, "OK")
	return nil
}

// verifyExportFile verifies an export with the given public keys.
func verifyExportFile(c *cli.Context, file string) error {
	if c.String("public-key") == "" {
		return fmt.Errorf("%w: --file needs --public-key", errUsage)
	}
	pk := c.String("public-key")
	b, err := os.ReadFile(pk)
	if err != nil {
		return err
	}
	keys, err := node.ParsePublicKeys(pk, b)
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := node.VerifyExport(f, keys)
	printReport(c.App.Writer, rep)
	if err != nil {
		return err
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
	events, records, err := node.ExportOffline(c.Context, dir, f, c.String("output"), c.App.Writer)
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
	keys, rejected, err := node.OfflineKeys(c.Context, dir, conf.HSM)
	warnRejected(c, rejected)
	if err != nil {
		return err
	}
	return node.WritePublicKeys(c.App.Writer, keys)
}
