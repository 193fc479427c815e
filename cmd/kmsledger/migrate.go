package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/cmd/progress"
	"github.com/kmsledger/kmsledger/migrate"
)

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "import the keys of a KES key store (fs or Vault) named by a KES server config",
		Description: "Reads an unmodified KES config (only its keystore section is used; ${ENV} is expanded),\n" +
			"and imports every key whose name matches PATTERN (default *) into the enclave, through the\n" +
			"server, with its provenance. Re-running changes nothing. A key that exists with other material\n" +
			"aborts the run unless --merge (skip it) or --force (add the KES material as its new latest version).",
		ArgsUsage: "[PATTERN]",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "from", Required: true, Usage: "KES server config file (YAML)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would happen; write nothing"},
			&cli.BoolFlag{Name: "merge", Usage: "skip keys that exist with other material"},
			&cli.BoolFlag{Name: "force", Usage: "import keys that exist with other material as their new latest version"},
			&cli.BoolFlag{Name: "no-policies", Usage: "do not import the config's policies and identities"},
		}, connFlags()...),
		Action: migrateAction,
	}
}

func migrateAction(c *cli.Context) error {
	opts, err := migrateOptions(c)
	if err != nil {
		return err
	}
	f, err := os.Open(c.String("from"))
	if err != nil {
		return err
	}
	cfg, err := migrate.ReadConfig(f, os.LookupEnv)
	f.Close()
	if err != nil {
		return err
	}
	ctx := c.Context
	src, err := migrate.Open(ctx, cfg, nil)
	if err != nil {
		return err
	}
	kc, err := newClient(c)
	if err != nil {
		return err
	}
	defer kc.Close()
	if !c.Bool("no-policies") {
		opts.Policies = cfg
	}
	var start time.Time // once the keys are listed
	opts.Progress = func(st *migrate.Stats) func() {
		start = time.Now()
		return showProgress(c.App.ErrWriter, st, start)
	}
	st, err := migrate.Run(ctx, src, kc, opts)
	if start.IsZero() || errors.Is(err, migrate.ErrPolicies) {
		return err // nothing was imported, or the policies failed
	}
	printMigration(c.App.Writer, src, opts, st, time.Since(start))
	if err != nil {
		return err
	}
	if st.Failed.Load() > 0 {
		return fmt.Errorf("%d keys failed (see above)", st.Failed.Load())
	}
	return nil
}

// migrateOptions maps the arguments and flags of migrate.
func migrateOptions(c *cli.Context) (migrate.Options, error) {
	opts := migrate.Options{Enclave: c.String("enclave"), Pattern: "*", OnConflict: migrate.OnConflictAbort,
		DryRun: c.Bool("dry-run"), Log: c.App.ErrWriter}
	pos, err := args(c, 0, 1)
	if err != nil {
		return opts, err
	}
	if len(pos) == 1 {
		opts.Pattern = pos[0]
	}
	if _, err := path.Match(opts.Pattern, ""); err != nil {
		return opts, fmt.Errorf("%w: pattern %q: %v", errUsage, opts.Pattern, err)
	}
	if c.Bool("merge") && c.Bool("force") {
		return opts, fmt.Errorf("%w: --merge and --force exclude each other", errUsage)
	}
	switch {
	case c.Bool("merge"):
		opts.OnConflict = migrate.OnConflictSkip
	case c.Bool("force"):
		opts.OnConflict = migrate.OnConflictReplace
	}
	if opts.Enclave == "" {
		return opts, fmt.Errorf("%w: --enclave is required", errUsage)
	}
	return opts, nil
}

// printMigration writes the summary of a run: the policy line (if the
// policies were imported) and the key line.
func printMigration(out io.Writer, src migrate.Source, opts migrate.Options, st *migrate.Stats, elapsed time.Duration) {
	if ps := st.Policies; ps != nil {
		fmt.Fprintf(out, "%spolicies and identities: %d policies imported, %d identities imported, %d unchanged, %d policies with unmappable rules\n",
			dryRunPrefix(opts.DryRun), ps.Policies, ps.Identities, ps.Unchanged, ps.Unmappable)
	}
	rate := float64(st.Imported.Load()+st.Unchanged.Load()+st.Replaced.Load()) / elapsed.Seconds()
	fmt.Fprintf(out, "%s%s from %s %s into enclave %s in %s (%.0f keys/s)\n", dryRunPrefix(opts.DryRun), st,
		src.Kind(), src.Location(), opts.Enclave, elapsed.Round(time.Millisecond), rate)
}

func dryRunPrefix(dry bool) string {
	if dry {
		return "dry run: "
	}
	return ""
}

// progress draws a progress bar on a terminal, or writes one line per
// second otherwise, until the returned function is called.
func showProgress(w io.Writer, s *migrate.Stats, start time.Time) func() {
	tty := progress.IsTerminal(w)
	b := progress.New(w, "migrate", "keys")
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				b.Done()
				return
			case <-t.C:
			}
			n, total := s.Done(), s.Found.Load()
			if tty {
				b.Set(int64(n), int64(total))
			} else {
				rate := float64(n) / time.Since(start).Seconds()
				fmt.Fprintf(w, "migrate: %d/%d keys, %.0f keys/s\n", n, total, rate)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
