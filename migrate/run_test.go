package migrate_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/migrate"
	"github.com/kmsledger/kmsledger/migrate/kescompat"
	"github.com/kmsledger/kmsledger/migrate/migratetest"
)

// faulty is an Importer that injects faults into a real client.
type faulty struct {
	migrate.Importer
	importErr func(name string) error // nil: no fault
	policyErr error
	calls     atomic.Int64
}

func (f *faulty) ImportKeyWithSource(ctx context.Context, enclave, name string, req *wire.KeyImportRequest) (*wire.KeyImportResponse, error) {
	f.calls.Add(1)
	if f.importErr != nil {
		if err := f.importErr(name); err != nil {
			return nil, err
		}
	}
	return f.Importer.ImportKeyWithSource(ctx, enclave, name, req)
}

func (f *faulty) GetPolicy(ctx context.Context, enclave, name string) (*wire.PolicyResponse, error) {
	if f.policyErr != nil {
		return nil, f.policyErr
	}
	return f.Importer.GetPolicy(ctx, enclave, name)
}

// runEnv is a node with one enclave and a KES fs key store of n keys plus
// one under a legacy name and one that does not parse.
type runEnv struct {
	c       *client.Client
	src     migrate.Source
	cfg     *migrate.Config
	userID  string // h1: identity of the config's policy identity
	adminID string
}

func newRunEnv(t *testing.T, n int, enclaves ...string) *runEnv {
	t.Helper()
	node := nodetest.Start(t, nodetest.Options{})
	c := node.Client(t, node.RootKey)
	for _, e := range enclaves {
		if err := c.CreateEnclave(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	keys, err := migratetest.WriteFSKeystore(dir, n, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	legacy := keys[0]
	legacy.Name = "legacy.key"
	v, err := migratetest.Value(legacy)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, legacy.Name), v, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := migrate.OpenFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	userHex, adminHex := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	cfg := &migrate.Config{Admin: adminHex, Policies: map[string]migrate.Policy{
		"minio": {Allow: []string{"/v1/key/generate/*", "/v1/key/decrypt/*"}, Identities: []string{userHex, "${UNSET}"}},
	}}
	userID, _ := kescompat.H1(userHex)
	adminID, _ := kescompat.H1(adminHex)
	return &runEnv{c: c, src: src, cfg: cfg, userID: userID, adminID: adminID}
}

func counts(st *migrate.Stats) [6]int64 {
	return [6]int64{st.Found.Load(), st.Imported.Load(), st.Unchanged.Load(), st.Skipped.Load(), st.Replaced.Load(), st.Failed.Load()}
}

// TestRun migrates a key store with its policies into an enclave, then
// again (nothing changes), and dry-runs it into another enclave (nothing
// is written).
func TestRun(t *testing.T) {
	const n = 8
	e := newRunEnv(t, n, "e1", "e2")
	ctx := t.Context()
	var log bytes.Buffer
	progressed := 0
	opts := migrate.Options{Enclave: "e1", Policies: e.cfg, Log: &log,
		Progress: func(st *migrate.Stats) func() {
			progressed++
			if st.Found.Load() != n+2 || st.Done() != 0 {
				t.Errorf("Progress: found %d, done %d, want %d, 0", st.Found.Load(), st.Done(), n+2)
			}
			return func() { progressed++ }
		}}
	st, err := migrate.Run(ctx, e.src, e.c, opts)
	if err != nil || counts(st) != [6]int64{n + 2, n + 1, 0, 0, 0, 1} || progressed != 2 {
		t.Fatalf("Run = %v, %v (progress %d), want found %d, imported %d, failed 1", st, err, progressed, n+2, n+1)
	}
	if ps := st.Policies; ps == nil || *ps != (migrate.PolicyStats{Policies: 1, Identities: 2}) {
		t.Fatalf("Policies = %+v, want 1 policy, 2 identities", st.Policies)
	}
	mapped, _ := kescompat.KeyName("legacy.key")
	for _, want := range []string{`FAILED broken:`, `mapped "legacy.key" to "` + mapped + `"`, `identity "${UNSET}" is not a KES identity`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log = %q, want it to say %q", log.String(), want)
		}
	}
	info, err := e.c.KeyInfo(ctx, "e1", mapped)
	if err != nil || info.Versions[0].Source == nil || info.Versions[0].Source.Name != "legacy.key" {
		t.Fatalf("KeyInfo(%s) = %+v, %v, want provenance legacy.key", mapped, info, err)
	}
	if id, err := e.c.GetIdentity(ctx, "e1", e.userID); err != nil || id.Policy != "minio" || wire.PrivilegeName(id.Privilege) != "User" {
		t.Fatalf("GetIdentity(user) = %+v, %v, want a User with policy minio", id, err)
	}
	if id, err := e.c.GetIdentity(ctx, "e1", e.adminID); err != nil || wire.PrivilegeName(id.Privilege) != "Admin" {
		t.Fatalf("GetIdentity(admin) = %+v, %v, want an Admin", id, err)
	}

	opts.Progress, opts.Log = nil, nil
	st, err = migrate.Run(ctx, e.src, e.c, opts)
	if err != nil || counts(st) != [6]int64{n + 2, 0, n + 1, 0, 0, 1} || *st.Policies != (migrate.PolicyStats{Unchanged: 3}) {
		t.Fatalf("second Run = %v %+v, %v, want everything unchanged", st, st.Policies, err)
	}

	opts.Enclave, opts.DryRun = "e2", true
	st, err = migrate.Run(ctx, e.src, e.c, opts)
	if err != nil || counts(st) != [6]int64{n + 2, n + 1, 0, 0, 0, 1} {
		t.Fatalf("dry Run = %v, %v, want %d would be imported", st, err, n+1)
	}
	if r, err := e.c.ListKeys(ctx, "e2", "", "", 0); err != nil || len(r.Keys) != 0 {
		t.Fatalf("after a dry run e2 holds %d keys (%v), want none", len(r.Keys), err)
	}
	if _, err := e.c.GetPolicy(ctx, "e2", "minio"); !errors.Is(err, client.ErrPolicyNotFound) {
		t.Fatalf("after a dry run GetPolicy(e2, minio) err = %v, want ErrPolicyNotFound", err)
	}
}

// Options Run cannot honour are refused before anything is read or
// imported.
func TestRunRefusesBadOptions(t *testing.T) {
	t.Parallel()
	src, err := migrate.OpenFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	imp := &faulty{} // any call but ImportKeyWithSource panics: nil Importer
	for name, opts := range map[string]migrate.Options{
		"NoEnclave":  {Pattern: "*"},
		"BadPattern": {Enclave: "e", Pattern: "["},
		"OnConflict": {Enclave: "e", OnConflict: "overwrite"},
	} {
		t.Run(name, func(t *testing.T) {
			st, err := migrate.Run(t.Context(), src, imp, opts)
			if err == nil || st.Found.Load() != 0 || imp.calls.Load() != 0 {
				t.Fatalf("Run(%+v) = %v, %v, want an error and nothing done", opts, st, err)
			}
		})
	}
}

// A key the server refuses is counted and the run goes on; a key that
// exists with other material stops it under "abort"; a failing policy
// import is reported as ErrPolicies.
func TestRunFaults(t *testing.T) {
	const n = 8
	e := newRunEnv(t, n, "e1", "e2", "e3")
	ctx := t.Context()
	boom := errors.New("injected")
	imp := &faulty{Importer: e.c, importErr: func(name string) error {
		if name == "key-00003" {
			return boom
		}
		return nil
	}}
	var log bytes.Buffer
	st, err := migrate.Run(ctx, e.src, imp, migrate.Options{Enclave: "e1", Log: &log})
	if err != nil || counts(st) != [6]int64{n + 2, n, 0, 0, 0, 2} || !strings.Contains(log.String(), "FAILED key-00003: injected") {
		t.Fatalf("Run = %v, %v, log %q; want key-00003 and broken failed, the rest imported", st, err, log.String())
	}

	imp = &faulty{Importer: e.c, importErr: func(string) error { return client.ErrKeyExists }}
	st, err = migrate.Run(ctx, e.src, imp, migrate.Options{Enclave: "e2", Policies: e.cfg})
	if err == nil || !strings.Contains(err.Error(), "exists in enclave e2 with other material") || st.Imported.Load() != 0 || st.Policies != nil {
		t.Fatalf("Run with a conflict = %v, %v, want an abort before the policies", st, err)
	}
	if imp.calls.Load() > 4+1 { // the workers in flight, at most
		t.Fatalf("Run with a conflict started %d imports, want it to stop", imp.calls.Load())
	}

	imp = &faulty{Importer: e.c, policyErr: boom}
	st, err = migrate.Run(ctx, e.src, imp, migrate.Options{Enclave: "e3", Policies: e.cfg})
	if !errors.Is(err, migrate.ErrPolicies) || !errors.Is(err, boom) || st.Imported.Load() != n+1 {
		t.Fatalf("Run with a failing policy import = %v, %v, want ErrPolicies after the keys", st, err)
	}
}
