package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/ledger"
)

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
			Usage: "a request waits at most this long for an audit record slot, then is answered 503 without being served (default 10s on a cluster node)"},
		&cli.IntFlag{Name: "checkpoint-events", Value: ledger.DefaultCheckpointEvents, EnvVars: []string{"KMSLEDGER_CHECKPOINT_EVENTS"},
			Usage: "sign a checkpoint of the hash chains after this many new events and audit batches"},
		&cli.DurationFlag{Name: "checkpoint-interval", Value: ledger.DefaultCheckpointInterval, EnvVars: []string{"KMSLEDGER_CHECKPOINT_INTERVAL"},
			Usage: "and at least this often when anything is new"},
	}
}

// auditConfigOf maps the audit and checkpoint flags, and the audit:
// section of the configuration file where a flag was not given, to the
// node's settings (audit nil: --audit=false).
func auditConfigOf(c *cli.Context, conf *config.Config) (audit *ledger.AuditConfig, cp *ledger.CheckpointConfig, err error) {
	a := ledger.AuditConfig{Interval: c.Duration("audit-interval"), Batch: c.Int("audit-batch"), Sync: c.Bool("audit-sync"),
		Wait: c.Duration("audit-wait")}
	if !c.IsSet("audit-interval") && conf.Audit.Interval > 0 {
		a.Interval = conf.Audit.Interval
	}
	if !c.IsSet("audit-batch") && conf.Audit.Batch > 0 {
		a.Batch = conf.Audit.Batch
	}
	if !c.IsSet("audit-sync") && conf.Audit.Sync {
		a.Sync = true
	}
	if !c.IsSet("audit-wait") && conf.Audit.Wait > 0 {
		a.Wait = conf.Audit.Wait
	}
	cp = &ledger.CheckpointConfig{Events: c.Int("checkpoint-events"), Interval: c.Duration("checkpoint-interval")}
	if a.Batch < 0 || a.Interval < 0 || a.Wait < 0 || cp.Events < 0 || cp.Interval < 0 {
		return nil, nil, fmt.Errorf("%w: audit and checkpoint settings must not be negative", errUsage)
	}
	if c.Bool("audit") {
		audit = &a
	}
	return audit, cp, nil
}
