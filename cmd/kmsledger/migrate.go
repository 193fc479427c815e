package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/migrate"
	"github.com/kmsledger/kmsledger/migrate/kescompat"
)

// migrateWorkers import keys concurrently: the server serialises the
// writes of one enclave, but reading and parsing overlap with them.
const migrateWorkers = 4

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

// migrateStats counts the outcome of a migration.
type migrateStats struct {
	found, imported, unchanged, skipped, replaced, failed atomic.Int64
}

func (s *migrateStats) String() string {
	return fmt.Sprintf("found %d, imported %d, unchanged %d, skipped %d, replaced %d, failed %d",
		s.found.Load(), s.imported.Load(), s.unchanged.Load(), s.skipped.Load(), s.replaced.Load(), s.failed.Load())
}

func migrateAction(c *cli.Context) error {
	pos, err := args(c, 0, 1)
	if err != nil {
		return err
	}
	pattern := "*"
	if len(pos) == 1 {
		pattern = pos[0]
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("%w: pattern %q: %v", errUsage, pattern, err)
	}
	if c.Bool("merge") && c.Bool("force") {
		return fmt.Errorf("%w: --merge and --force exclude each other", errUsage)
	}
	onConflict := "abort"
	switch {
	case c.Bool("merge"):
		onConflict = "skip"
	case c.Bool("force"):
		onConflict = "replace"
	}
	enclave := c.String("enclave")
	if enclave == "" {
		return fmt.Errorf("%w: --enclave is required", errUsage)
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
	names, err := src.List(ctx)
	if err != nil {
		return err
	}
	var todo []string
	for _, n := range names {
		if ok, _ := path.Match(pattern, n); ok {
			todo = append(todo, n)
		}
	}
	m := &migration{kc: kc, src: src, enclave: enclave, onConflict: onConflict, dryRun: c.Bool("dry-run"),
		out: c.App.Writer, log: c.App.ErrWriter}
	m.stats.found.Store(int64(len(todo)))
	start := time.Now()
	stopProgress := progress(m.log, &m.stats, len(todo), start)
	err = m.run(ctx, todo)
	stopProgress()
	if err == nil && !c.Bool("no-policies") {
		ps, perr := m.migratePolicies(ctx, cfg)
		if perr != nil {
			return fmt.Errorf("policies: %w", perr)
		}
		fmt.Fprintf(m.out, "%spolicies and identities: %d policies imported, %d identities imported, %d unchanged, %d policies with unmappable rules\n",
			dryRunPrefix(m.dryRun), ps.policies, ps.identities, ps.unchanged, ps.unmappable)
	}
	elapsed := time.Since(start)
	rate := float64(m.stats.imported.Load()+m.stats.unchanged.Load()+m.stats.replaced.Load()) / elapsed.Seconds()
	fmt.Fprintf(m.out, "%s%s from %s %s into enclave %s in %s (%.0f keys/s)\n", dryRunPrefix(m.dryRun), &m.stats,
		src.Kind(), src.Location(), enclave, elapsed.Round(time.Millisecond), rate)
	if err != nil {
		return err
	}
	if m.stats.failed.Load() > 0 {
		return fmt.Errorf("%d keys failed (see above)", m.stats.failed.Load())
	}
	return nil
}

func dryRunPrefix(dry bool) string {
	if dry {
		return "dry run: "
	}
	return ""
}

type migration struct {
	kc         *client.Client
	src        migrate.Source
	enclave    string
	onConflict string
	dryRun     bool
	out, log   io.Writer
	stats      migrateStats
	mu         sync.Mutex // serialises output lines
}

func (m *migration) say(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintf(m.log, format+"\n", args...)
}

// run imports names with a few workers. A conflict under "abort" stops
// the whole run: no further keys are started.
func (m *migration) run(ctx context.Context, names []string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan string)
	var wg sync.WaitGroup
	for range migrateWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				if err := m.one(ctx, n); err != nil {
					cancel(err)
				}
			}
		}()
	}
	for _, n := range names {
		select {
		case work <- n:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// one migrates one key. It returns an error only for a conflict that
// must stop the run; other failures are counted and reported.
func (m *migration) one(ctx context.Context, kesName string) error {
	fail := func(format string, args ...any) error {
		m.stats.failed.Add(1)
		m.say("FAILED %s: "+format, append([]any{kesName}, args...)...)
		return nil
	}
	value, err := m.src.Read(ctx, kesName)
	if err != nil {
		return fail("%v", err)
	}
	k, err := migrate.ParseKeyValue(kesName, value)
	clear(value)
	if err != nil {
		return fail("%v", err)
	}
	defer k.Clear()
	name, err := kescompat.KeyName(kesName)
	if err != nil {
		return fail("%v", err)
	}
	if name != kesName {
		m.say("mapped %q to %q (the original name is kept as provenance)", kesName, name)
	}
	if m.dryRun {
		return m.dry(ctx, name, k)
	}
	req := &wire.KeyImportRequest{
		Type: string(k.Type), Key: k.Material, HMACKey: k.HMACKey, OnConflict: m.onConflict,
		CommandID: migrate.CommandID(m.enclave, m.src.Kind(), m.src.Location(), kesName, k.Material),
		Source: &wire.ImportSource{Kind: m.src.Kind(), Location: m.src.Location(), Name: kesName,
			CreatedBy: k.CreatedBy, Format: k.Format},
	}
	if !k.CreatedAt.IsZero() {
		req.Source.CreatedAt = k.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	r, err := m.kc.ImportKeyWithSource(ctx, m.enclave, name, req)
	switch {
	case errors.Is(err, client.ErrKeyExists):
		m.stats.failed.Add(1)
		return fmt.Errorf("key %q exists in enclave %s with other material: nothing more was imported; "+
			"re-run with --merge to skip such keys or --force to import the KES material as their new latest version", name, m.enclave)
	case err != nil:
		return fail("%v", err)
	}
	switch {
	case r.Replayed:
		// Imported by an earlier run into this enclave (the same command
		// id on the same key): nothing was written now.
		m.stats.unchanged.Add(1)
	case r.Result == "imported":
		m.stats.imported.Add(1)
	case r.Result == "unchanged":
		m.stats.unchanged.Add(1)
	case r.Result == "skipped":
		m.stats.skipped.Add(1)
		m.say("skipped %s: exists with other material", name)
	case r.Result == "replaced":
		m.stats.replaced.Add(1)
		m.say("replaced %s: KES material added as version %d", name, r.Version)
	}
	return nil
}

// dry reports what an import would do, comparing fingerprints.
func (m *migration) dry(ctx context.Context, name string, k migrate.Key) error {
	info, err := m.kc.KeyInfo(ctx, m.enclave, name)
	switch {
	case errors.Is(err, client.ErrKeyNotFound):
		m.stats.imported.Add(1)
		m.say("would import %s (%s, %s)", name, k.Type, k.Format)
		return nil
	case err != nil:
		m.stats.failed.Add(1)
		m.say("FAILED %s: %v", name, err)
		return nil
	}
	fp := hsm.Fingerprint(k.Material)
	for _, v := range info.Versions {
		if v.Fingerprint == fp {
			m.stats.unchanged.Add(1)
			return nil
		}
	}
	switch m.onConflict {
	case "skip":
		m.stats.skipped.Add(1)
		m.say("would skip %s: exists with other material", name)
	case "replace":
		m.stats.replaced.Add(1)
		m.say("would replace %s: exists with other material", name)
	default:
		m.stats.failed.Add(1)
		m.say("CONFLICT %s: exists with other material (the real run would abort here)", name)
	}
	return nil
}

// progress draws a progress bar on a terminal, or writes one line per
// second otherwise, until the returned function is called.
func progress(w io.Writer, s *migrateStats, total int, start time.Time) func() {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
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
				if tty {
					fmt.Fprintln(w)
				}
				return
			case <-t.C:
			}
			n := s.imported.Load() + s.unchanged.Load() + s.skipped.Load() + s.replaced.Load() + s.failed.Load()
			rate := float64(n) / time.Since(start).Seconds()
			if tty {
				const width = 30
				filled := 0
				if total > 0 {
					filled = int(n) * width / total
				}
				bar := make([]byte, width)
				for i := range bar {
					bar[i] = ' '
					if i < filled {
						bar[i] = '='
					}
				}
				fmt.Fprintf(w, "\r[%s] %d/%d keys %.0f/s", bar, n, total, rate)
			} else {
				fmt.Fprintf(w, "migrate: %d/%d keys, %.0f keys/s\n", n, total, rate)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
