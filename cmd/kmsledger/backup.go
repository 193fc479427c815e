package main

// backup and restore, with minkms's names: `backup [FILE]` fetches a
// backup from a running server (GET /v1/db) or reads a stopped server's
// data dir (--data-dir); `restore FILE` restores one into a stopped
// server's data dir, offline.

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/cmd/progress"
)

// backupCommands returns the backup and restore commands.
func backupCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:  "backup",
			Usage: "write a backup of the server's state (keys sealed as stored: only its HSM opens them)",
			Description: "Fetches a backup from the server (GET /v1/db, root API key), after a signed checkpoint,\n" +
				"or, with --data-dir, reads a stopped server's data dir. FILE defaults to YYYYMMDD_HHMMSS_kms.db.gzip;\n" +
				"an existing file is never overwritten. The backup is gzip: `gunzip -c FILE` shows its JSON lines.",
			ArgsUsage: "[FILE]",
			Flags: append([]cli.Flag{
				&cli.StringFlag{Name: "data-dir", Usage: "back up this stopped server's data dir instead of asking a server"},
			}, connFlags()...),
			Action: backupAction,
		},
		{
			Name:  "restore",
			Usage: "restore a backup into a stopped server's data dir (offline)",
			Description: "Checks every byte of FILE, restores it into a new directory next to the data dir, has the\n" +
				"configured HSMs open it, verifies its hash chains and signed checkpoints, and only then moves it\n" +
				"into place. A data dir that holds data needs --force, and is renamed DIR.before-restore-TIME, not\n" +
				"deleted. --until-seq or --until restore the state as of that point; the events after it are\n" +
				"kept in a rest file (FILE.after-SEQ.db.gzip, or --rest-file), not lost.",
			ArgsUsage: "FILE",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "data-dir", Usage: "the data dir to restore into (default: the config's, or kmsledger-data)"},
				&cli.StringFlag{Name: "hsm-key", EnvVars: hsmKeyEnvVars(), Usage: "software HSM key (prefer the environment variable)"},
				&cli.StringFlag{Name: "config", EnvVars: []string{"KMSLEDGER_CONFIG"}, Usage: "server configuration file, for its HSMs and data dir"},
				&cli.Uint64Flag{Name: "until-seq", Usage: "restore the ledger up to this event sequence number"},
				&cli.StringFlag{Name: "until", Usage: "restore the state as of this point: " + pointUsage},
				&cli.StringFlag{Name: "rest-file", Usage: "where the events after --until/--until-seq go"},
				&cli.BoolFlag{Name: "force", Usage: "replace a data dir that holds data (it is renamed, not deleted)"},
			},
			Action: restoreAction,
		},
	}
}

func backupAction(c *cli.Context) error {
	pos, err := args(c, 0, 1)
	if err != nil {
		return err
	}
	file := first(pos)
	if file == "" {
		file = time.Now().UTC().Format(api.BackupNameLayout)
	}
	if _, err := os.Lstat(file); err == nil {
		return fmt.Errorf("%s exists: name another file", file)
	}
	part := file + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		f.Close()
		if !ok {
			os.Remove(part)
		}
	}()
	b := progress.New(c.App.ErrWriter, "backup", "messages")
	if dir := c.String("data-dir"); dir != "" {
		_, err = node.BackupOffline(c.Context, dir, f, b.Progress)
	} else {
		b = progress.New(c.App.ErrWriter, "backup", "bytes")
		kc, cerr := newClient(c)
		if err = cerr; err == nil {
			defer kc.Close()
			_, err = kc.DownloadBackup(c.Context, &progress.Writer{W: f, Bar: b})
		}
	}
	b.Done()
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return err
	}
	if err := os.Rename(part, file); err != nil {
		return err
	}
	ok = true
	fi, _ := os.Stat(file)
	fmt.Fprintf(c.App.Writer, "%s\n", file)
	if fi != nil {
		fmt.Fprintf(c.App.ErrWriter, "backup written: %d bytes\n", fi.Size())
	}
	return nil
}

func restoreAction(c *cli.Context) error {
	pos, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	conf, err := loadServerConfig(c.String("config"), hsmKeyOnly(c))
	if err != nil {
		return err
	}
	dir := c.String("data-dir")
	if dir == "" {
		dir = conf.Dir
	}
	if dir == "" {
		dir = "kmsledger-data"
	}
	cfg := node.RestoreConfig{File: pos[0], Dir: dir, HSMs: conf.HSM, UntilSeq: c.Uint64("until-seq"),
		RestFile: c.String("rest-file"), Force: c.Bool("force")}
	if s := c.String("until"); s != "" {
		p, err := parsePoint("until", s, time.Now())
		if err != nil {
			return err
		}
		if p.Seq != 0 && cfg.UntilSeq != 0 {
			return fmt.Errorf("%w: --until SEQ and --until-seq exclude each other", errUsage)
		}
		cfg.UntilSeq, cfg.Until = max(cfg.UntilSeq, p.Seq), p.Time
	}
	if cfg.RestFile != "" && cfg.UntilSeq == 0 && cfg.Until.IsZero() {
		return fmt.Errorf("%w: --rest-file needs --until or --until-seq", errUsage)
	}
	b := progress.New(c.App.ErrWriter, "restore", "messages")
	cfg.Progress = b.Progress
	res, err := node.RestoreOffline(c.Context, cfg)
	b.Done()
	warnRejected(c, res.Rejected)
	if err != nil {
		if errors.Is(err, node.ErrNoHSM) {
			return fmt.Errorf("%w (the HSM must open the backup before it replaces anything)", err)
		}
		return err
	}
	rep := res.Report
	fmt.Fprintf(c.App.Writer, "restored %s into %s: LEDGER 1..%d, AUDIT 1..%d, %d sealed secrets; verified, %d checkpoints\n",
		cfg.File, dir, rep.LedgerLast, rep.AuditLast, rep.Restored.Secrets, res.Verify.Checkpoints)
	if v := res.Verify; v.Ledger.SignedThrough < v.Ledger.Last || v.Audit.SignedThrough < v.Audit.Last {
		fmt.Fprintf(c.App.ErrWriter, "note: LEDGER after seq %d and AUDIT after seq %d are chained but not signed by a checkpoint "+
			"(the server signs them at its next checkpoint; a backup through a running server is signed in full)\n",
			v.Ledger.SignedThrough, v.Audit.SignedThrough)
	}
	if res.RestFile != "" {
		fmt.Fprintf(c.App.Writer, "set aside after LEDGER seq %d (%s): %d events, %d audit batches, %d sealed secrets in %s\n",
			rep.LedgerLast, rep.LedgerTime.UTC().Format(time.RFC3339), rep.Rest.Ledger, rep.Rest.Audit, rep.Rest.Secrets, res.RestFile)
	}
	if res.MovedAside != "" {
		fmt.Fprintf(c.App.Writer, "the previous data dir is now %s\n", res.MovedAside)
	}
	return nil
}
