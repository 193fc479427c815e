package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// auditSettings are the server's audit and checkpoint flags.
type auditSettings struct {
	off                bool
	interval           time.Duration
	batch              int
	sync               bool
	wait               time.Duration
	checkpointEvents   int
	checkpointInterval time.Duration
}

// auditServerFlags returns the audit and checkpoint flags of `server`.
func auditServerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "audit", Value: true, EnvVars: []string{"KMSLEDGER_AUDIT"},
			Usage: "record every API request in the AUDIT stream (--audit=false turns it off)"},
		&cli.DurationFlag{Name: "audit-interval", Value: ledger.DefaultAuditInterval, EnvVars: []string{"KMSLEDGER_AUDIT_INTERVAL"},
			Usage: "store buffered audit records this often"},
		&cli.IntFlag{Name: "audit-batch", Value: ledger.DefaultAuditBatch, EnvVars: []string{"KMSLEDGER_AUDIT_BATCH"},
			Usage: "at most this many audit records are accepted and not yet stored (a crash loses at most these); half a batch is stored at once"},
		&cli.BoolFlag{Name: "audit-sync", EnvVars: []string{"KMSLEDGER_AUDIT_SYNC"},
			Usage: "answer a request only once its audit record is stored"},
		&cli.DurationFlag{Name: "audit-wait", Value: ledger.DefaultAuditWait, EnvVars: []string{"KMSLEDGER_AUDIT_WAIT"},
			Usage: "a request waits at most this long for an audit record slot, then is answered 503 without being served"},
		&cli.IntFlag{Name: "checkpoint-events", Value: ledger.DefaultCheckpointEvents, EnvVars: []string{"KMSLEDGER_CHECKPOINT_EVENTS"},
			Usage: "sign a checkpoint of the hash chains after this many new events and audit batches"},
		&cli.DurationFlag{Name: "checkpoint-interval", Value: ledger.DefaultCheckpointInterval, EnvVars: []string{"KMSLEDGER_CHECKPOINT_INTERVAL"},
			Usage: "and at least this often when anything is new"},
	}
}

// auditSettingsOf reads the flags.
func auditSettingsOf(c *cli.Context) auditSettings {
	return auditSettings{
		off: !c.Bool("audit"), interval: c.Duration("audit-interval"), batch: c.Int("audit-batch"), sync: c.Bool("audit-sync"),
		wait: c.Duration("audit-wait"), checkpointEvents: c.Int("checkpoint-events"),
		checkpointInterval: c.Duration("checkpoint-interval"),
	}
}

// startAudit unseals (or creates) the checkpoint signing key, starts the
// checkpoints and, unless turned off, the Auditor. stop closes the
// Auditor (storing every accepted record; it logs how many were stored,
// dropped and lost) and then the checkpoints (writing a last one that
// covers it).
func startAudit(ctx context.Context, cfg auditSettings, store *ledger.Store, proj *projections.Projection, rek *hsm.REK,
	actor string, log *slog.Logger) (_ *ledger.Auditor, stop func(), err error) {
	if cfg.batch < 0 || cfg.interval < 0 || cfg.wait < 0 || cfg.checkpointEvents < 0 || cfg.checkpointInterval < 0 {
		return nil, nil, fmt.Errorf("%w: audit and checkpoint settings must not be negative", errUsage)
	}
	signer, err := commands.SigningKey(ctx, store, proj, rek, actor)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint signing key: %w", err)
	}
	cp := store.StartCheckpoints(signer, ledger.CheckpointConfig{Events: cfg.checkpointEvents, Interval: cfg.checkpointInterval, Logger: log})
	var a *ledger.Auditor
	if !cfg.off {
		a = store.NewAuditor(ledger.AuditConfig{Interval: cfg.interval, Batch: cfg.batch, Sync: cfg.sync, Wait: cfg.wait, Logger: log})
		log.Info("auditing every request", "interval", cfg.interval, "batch", cfg.batch, "sync", cfg.sync, "wait", cfg.wait)
	}
	return a, func() {
		if a != nil {
			err := a.Close()
			st := a.Stats()
			attrs := []any{"stored", st.Stored, "dropped", st.Dropped, "lost", st.Lost, "busy", st.Busy}
			if err != nil || st.Lost > 0 {
				log.Error("audit stopped; records lost", append(attrs, "err", err)...)
			} else {
				log.Info("audit stopped; every accepted record stored", attrs...)
			}
		}
		if err := cp.Close(); err != nil {
			log.Error("last checkpoint", "err", err)
		}
	}, nil
}
