// Run: a migration from a KES key store into one enclave of a kmsledger
// server, through an Importer (the server's client).
//
// Keys are imported by a few workers, each with a deterministic command id
// (CommandID), so a re-run appends nothing; a key that exists with other
// material aborts the run, or is skipped or replaced (Options.OnConflict).
// A dry run only reads: it compares fingerprints. The config's policies
// and identities follow the keys (run_policies.go).

package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/migrate/kescompat"
)

// workers import keys concurrently: the server runs imports of different
// keys of one enclave at once and stores them with shared fsyncs (group
// commit), so more workers import faster, up to the server's cores.
const workers = 32

// Importer writes into a kmsledger server; *client.Client is one. Errors
// are those of the client: ImportKeyWithSource returns one matching
// client.ErrKeyExists for a key with other material under "abort", and
// KeyInfo, GetPolicy and GetIdentity one matching client.ErrKeyNotFound,
// client.ErrPolicyNotFound and client.ErrIdentityNotFound for what is not
// there.
type Importer interface {
	ImportKeyWithSource(ctx context.Context, enclave, name string, req *wire.KeyImportRequest) (*wire.KeyImportResponse, error)
	KeyInfo(ctx context.Context, enclave, name string) (*wire.KeyInfo, error)
	GetPolicy(ctx context.Context, enclave, name string) (*wire.PolicyResponse, error)
	CreatePolicy(ctx context.Context, enclave string, req *wire.CreatePolicyRequest) error
	GetIdentity(ctx context.Context, enclave, identity string) (*wire.IdentityResponse, error)
	CreateIdentity(ctx context.Context, enclave string, req *wire.CreateIdentityRequest) error
	AssignPolicy(ctx context.Context, enclave, identity, policy string) error
}

var _ Importer = (*client.Client)(nil)

// What Options.OnConflict may say about a key that exists with other
// material.
const (
	OnConflictAbort   = "abort"   // stop the run (the default)
	OnConflictSkip    = "skip"    // leave the key as it is
	OnConflictReplace = "replace" // add the KES material as its new latest version
)

// ErrPolicies wraps every error of the policy part of a run.
var ErrPolicies = errors.New("policies")

// Options say what Run does.
type Options struct {
	Enclave    string // required
	Pattern    string // path.Match pattern on KES names; "" means "*"
	OnConflict string // OnConflictAbort ("" too), OnConflictSkip or OnConflictReplace
	DryRun     bool   // read and report only
	// Policies, if not nil, is the KES config whose policies and
	// identities are imported after the keys (if every key went well).
	Policies *Config
	// Log receives one line per event worth telling (mapped names,
	// failures, conflicts, what a dry run would do); nil discards them.
	Log io.Writer
	// Progress, if not nil, is called once the keys are listed, before the
	// first import, with the counters Run updates as it goes; Run calls
	// the function it returns when the keys are done.
	Progress func(st *Stats) (stop func())
}

// Stats count the outcome of a run. The key counters are updated while
// the run goes on.
type Stats struct {
	Found, Imported, Unchanged, Skipped, Replaced, Failed atomic.Int64
	// Policies is nil unless the policy part ran.
	Policies *PolicyStats
}

// Done returns the number of keys handled so far.
func (s *Stats) Done() int64 {
	return s.Imported.Load() + s.Unchanged.Load() + s.Skipped.Load() + s.Replaced.Load() + s.Failed.Load()
}

// String returns the key counters as the CLI prints them.
func (s *Stats) String() string {
	return fmt.Sprintf("found %d, imported %d, unchanged %d, skipped %d, replaced %d, failed %d",
		s.Found.Load(), s.Imported.Load(), s.Unchanged.Load(), s.Skipped.Load(), s.Replaced.Load(), s.Failed.Load())
}

// Run imports the keys of src whose names match opts.Pattern into
// opts.Enclave through imp, then (with opts.Policies) the policies and
// identities of the KES config. It returns an error for a run that must
// stop: a bad pattern, a failed listing, a conflict under "abort", a
// cancelled context or a failed policy import (wrapping ErrPolicies);
// a key that cannot be read, parsed or imported is counted in Failed,
// logged, and the run goes on. The stats are returned in every case.
func Run(ctx context.Context, src Source, imp Importer, opts Options) (*Stats, error) {
	m := &migration{imp: imp, src: src, opts: opts, log: opts.Log}
	if m.log == nil {
		m.log = io.Discard
	}
	if m.opts.Pattern == "" {
		m.opts.Pattern = "*"
	}
	if m.opts.OnConflict == "" {
		m.opts.OnConflict = OnConflictAbort
	}
	if err := m.check(); err != nil {
		return &m.stats, err
	}
	names, err := src.List(ctx)
	if err != nil {
		return &m.stats, err
	}
	var todo []string
	for _, n := range names {
		if ok, _ := path.Match(m.opts.Pattern, n); ok {
			todo = append(todo, n)
		}
	}
	m.stats.Found.Store(int64(len(todo)))
	stop := func() {}
	if opts.Progress != nil {
		stop = opts.Progress(&m.stats)
	}
	err = m.run(ctx, todo)
	stop()
	if err != nil || opts.Policies == nil {
		return &m.stats, err
	}
	ps, err := m.migratePolicies(ctx, opts.Policies)
	if err != nil {
		return &m.stats, fmt.Errorf("%w: %w", ErrPolicies, err)
	}
	m.stats.Policies = &ps
	return &m.stats, nil
}

// migration is one run.
type migration struct {
	imp   Importer
	src   Source
	opts  Options
	log   io.Writer
	stats Stats
	mu    sync.Mutex // serialises log lines
}

func (m *migration) check() error {
	if m.opts.Enclave == "" {
		return errors.New("migrate: no enclave")
	}
	if _, err := path.Match(m.opts.Pattern, ""); err != nil {
		return fmt.Errorf("migrate: pattern %q: %w", m.opts.Pattern, err)
	}
	switch m.opts.OnConflict {
	case OnConflictAbort, OnConflictSkip, OnConflictReplace:
		return nil
	}
	return fmt.Errorf("migrate: on conflict %q: want %q, %q or %q", m.opts.OnConflict, OnConflictAbort, OnConflictSkip, OnConflictReplace)
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
	for range workers {
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
		m.stats.Failed.Add(1)
		m.say("FAILED %s: "+format, append([]any{kesName}, args...)...)
		return nil
	}
	value, err := m.src.Read(ctx, kesName)
	if err != nil {
		return fail("%v", err)
	}
	k, err := ParseKeyValue(kesName, value)
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
	if m.opts.DryRun {
		return m.dry(ctx, name, k)
	}
	r, err := m.imp.ImportKeyWithSource(ctx, m.opts.Enclave, name, m.importRequest(kesName, k))
	switch {
	case errors.Is(err, client.ErrKeyExists):
		m.stats.Failed.Add(1)
		return fmt.Errorf("key %q exists in enclave %s with other material: nothing more was imported; "+
			"re-run with --merge to skip such keys or --force to import the KES material as their new latest version", name, m.opts.Enclave)
	case err != nil:
		return fail("%v", err)
	}
	m.count(name, r)
	return nil
}

// importRequest is the import of k, with its provenance and command id.
func (m *migration) importRequest(kesName string, k Key) *wire.KeyImportRequest {
	req := &wire.KeyImportRequest{
		Type: string(k.Type), Key: k.Material, HMACKey: k.HMACKey, OnConflict: m.opts.OnConflict,
		CommandID: CommandID(m.opts.Enclave, m.src.Kind(), m.src.Location(), kesName, k.Material),
		Source: &wire.ImportSource{Kind: m.src.Kind(), Location: m.src.Location(), Name: kesName,
			CreatedBy: k.CreatedBy, Format: k.Format},
	}
	if !k.CreatedAt.IsZero() {
		req.Source.CreatedAt = k.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	return req
}

// count records the server's answer to an import.
func (m *migration) count(name string, r *wire.KeyImportResponse) {
	switch {
	case r.Replayed:
		// Imported by an earlier run into this enclave (the same command
		// id on the same key): nothing was written now.
		m.stats.Unchanged.Add(1)
	case r.Result == "imported":
		m.stats.Imported.Add(1)
	case r.Result == "unchanged":
		m.stats.Unchanged.Add(1)
	case r.Result == "skipped":
		m.stats.Skipped.Add(1)
		m.say("skipped %s: exists with other material", name)
	case r.Result == "replaced":
		m.stats.Replaced.Add(1)
		m.say("replaced %s: KES material added as version %d", name, r.Version)
	}
}

// dry reports what an import would do, comparing fingerprints.
func (m *migration) dry(ctx context.Context, name string, k Key) error {
	info, err := m.imp.KeyInfo(ctx, m.opts.Enclave, name)
	switch {
	case errors.Is(err, client.ErrKeyNotFound):
		m.stats.Imported.Add(1)
		m.say("would import %s (%s, %s)", name, k.Type, k.Format)
		return nil
	case err != nil:
		m.stats.Failed.Add(1)
		m.say("FAILED %s: %v", name, err)
		return nil
	}
	fp := hsm.Fingerprint(k.Material)
	for _, v := range info.Versions {
		if v.Fingerprint == fp {
			m.stats.Unchanged.Add(1)
			return nil
		}
	}
	switch m.opts.OnConflict {
	case OnConflictSkip:
		m.stats.Skipped.Add(1)
		m.say("would skip %s: exists with other material", name)
	case OnConflictReplace:
		m.stats.Replaced.Add(1)
		m.say("would replace %s: exists with other material", name)
	default:
		m.stats.Failed.Add(1)
		m.say("CONFLICT %s: exists with other material (the real run would abort here)", name)
	}
	return nil
}
