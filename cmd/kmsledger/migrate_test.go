package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/migrate/kescompat"
	"github.com/kmsledger/kmsledger/migrate/migratetest"
)

// migrateEnv is a running server plus what the migrate CLI needs.
type migrateEnv struct {
	t       *testing.T
	p       *process
	dir     string
	rootKey string
	c       *client.Client
}

func newMigrateEnv(t *testing.T) *migrateEnv {
	t.Helper()
	dir := t.TempDir()
	hk, rootKey := newHSMKey(t)
	p := startProcess(t, dir, hk)
	return &migrateEnv{t: t, p: p, dir: dir, rootKey: rootKey, c: p.client(t, dir, rootKey)}
}

// kesConfig writes a KES server config whose keystore is the fs dir.
func kesConfig(t *testing.T, keystore string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "kes.yml")
	cfg := fmt.Sprintf(`address: 0.0.0.0:7373
admin:
  identity: disabled
tls:
  key: ./private.key
  cert: ./public.crt
policy:
  minio:
    allow:
    - /v1/key/create/*
    - /v1/key/generate/*
    - /v1/key/decrypt/*
    identities:
    - ${MINIO_IDENTITY}
keystore:
  fs:
    path: %s
`, keystore)
	if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// migrate runs `kmsledger migrate` in process and returns its stdout,
// stderr and error.
func (m *migrateEnv) migrate(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	app := &cli.App{Name: "kmsledger", Commands: []*cli.Command{migrateCommand()}, Writer: &out, ErrWriter: &errOut}
	argv := append([]string{"kmsledger", "migrate", "-a", m.rootKey, "-s", m.p.addr, "--ca", filepath.Join(m.dir, "tls", "cert.pem")}, args...)
	err := app.Run(argv)
	return out.String(), errOut.String(), err
}

func (m *migrateEnv) countKeys(enclave string) int {
	m.t.Helper()
	n, next := 0, ""
	for {
		r, err := m.c.ListKeys(context.Background(), enclave, "", next, 0)
		if err != nil {
			m.t.Fatal(err)
		}
		n += len(r.Keys)
		if next = r.ContinueAt; next == "" {
			return n
		}
	}
}

// TestMigrateKESVectors migrates the fs keystores of real KES releases
// and decrypts every vector's ciphertext with its context.
func TestMigrateKESVectors(t *testing.T) {
	t.Setenv("MINIO_IDENTITY", strings.Repeat("ab", 32))
	m := newMigrateEnv(t)
	ctx := context.Background()
	stores := map[string]string{ // enclave -> keystore dir
		"kes-current": "current", "kes-v0191": "legacy/v0.19.1-aes", "kes-v0223": "legacy/v0.22.3-noaes", "kes-v0230": "legacy/v0.23.0-aes",
	}
	for enclave, dir := range stores {
		migrateStore(t, m, enclave, dir)
	}
	// The KES policy and its identity came along: the same client keeps
	// the same rights.
	pol, err := m.c.GetPolicy(ctx, "kes-current", "minio")
	if err != nil || len(pol.Allow["KEY:GENERATE"]) == 0 || len(pol.Allow["KEY:DECRYPT"]) == 0 || len(pol.Allow["KEY:CREATE"]) == 0 {
		t.Fatalf("migrated policy = %+v, %v", pol, err)
	}
	kesID, _ := kescompat.H1(strings.Repeat("ab", 32))
	id, err := m.c.GetIdentity(ctx, "kes-current", kesID)
	if err != nil || id.Policy != "minio" || id.Privilege != 3 {
		t.Fatalf("migrated identity = %+v, %v; want a User with policy minio", id, err)
	}
	// Provenance.
	info, err := m.c.KeyInfo(ctx, "kes-current", "minio-default-key")
	if err != nil {
		t.Fatal(err)
	}
	src := info.Versions[0].Source
	if src == nil || src.Kind != "kes-fs" || src.Name != "minio-default-key" || src.Format == "" || !strings.HasSuffix(src.Location, "fs-keystore") {
		t.Fatalf("provenance = %+v", src)
	}

	n := checkKESVectors(t, m, stores)
	// The KES HMAC vector (kes-vectors/README.md).
	mac, err := m.c.MAC(ctx, "kes-current", "minio-default-key", 0, []byte("message"))
	if err != nil || hex.EncodeToString(mac.MAC) != "82ff2f9e89eeffbf380dbc47c11a6169555e4c66e050e3db846b64428936653e" {
		t.Fatalf("MAC(minio-default-key, message) = %x, %v", mac, err)
	}
	t.Logf("%d KES vectors decrypt after migration", n)
}

// migrateStore migrates the KES fs keystore testdata/kes/dir into a new
// enclave, checks every key came, and that a second run changes nothing.
func migrateStore(t *testing.T, m *migrateEnv, enclave, dir string) {
	t.Helper()
	ctx := context.Background()
	if err := m.c.CreateEnclave(ctx, enclave); err != nil {
		t.Fatal(err)
	}
	cfg := kesConfig(t, filepath.Join("..", "..", "testdata", "kes", dir, "fs-keystore"))
	out, errOut, err := m.migrate("--from", cfg, "-e", enclave)
	if err != nil {
		t.Fatalf("migrate %s: %v\n%s%s", dir, err, out, errOut)
	}
	files, _ := os.ReadDir(filepath.Join("..", "..", "testdata", "kes", dir, "fs-keystore"))
	if got := m.countKeys(enclave); got != len(files) || !strings.Contains(out, fmt.Sprintf("imported %d,", len(files))) {
		t.Fatalf("%s: %d keys in enclave, %d in KES; output %q", dir, got, len(files), out)
	}
	// Idempotent: a second run changes nothing.
	head := ledgerHead(t, m)
	out, _, err = m.migrate("--from", cfg, "-e", enclave)
	if err != nil || !strings.Contains(out, fmt.Sprintf("imported 0, unchanged %d,", len(files))) ||
		!strings.Contains(out, "0 policies imported, 0 identities imported, 2 unchanged") {
		t.Fatalf("second migrate %s: %v %q", dir, err, out)
	}
	if h := ledgerHead(t, m); h != head {
		t.Fatal("second migrate changed the keys")
	}
}

// checkKESVectors decrypts the ciphertext of every KES vector with its
// context, in the enclave its keystore was migrated to (stores: enclave
// -> keystore dir), and returns how many there are.
func checkKESVectors(t *testing.T, m *migrateEnv, stores map[string]string) int {
	t.Helper()
	ctx := context.Background()
	var vectors []struct {
		KeyFile    string `json:"key_file"`
		Context    string `json:"context_b64"`
		Plaintext  string `json:"plaintext_hex"`
		Ciphertext string `json:"ciphertext_b64"`
		Format     string `json:"format"`
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "kes", "all-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &vectors); err != nil || len(vectors) == 0 {
		t.Fatalf("vectors: %v (%d)", err, len(vectors))
	}
	for _, v := range vectors {
		dir := filepath.Dir(filepath.Dir(v.KeyFile))
		enclave := ""
		for e, d := range stores {
			if d == dir {
				enclave = e
			}
		}
		ct, _ := base64.StdEncoding.DecodeString(v.Ciphertext)
		ad, _ := base64.StdEncoding.DecodeString(v.Context)
		want, _ := hex.DecodeString(v.Plaintext)
		d, err := m.c.Decrypt(ctx, enclave, filepath.Base(v.KeyFile), 0, ct, ad)
		if err != nil || !bytes.Equal(d.Plaintext, want) {
			t.Errorf("vector %s (%s): Decrypt err = %v", v.KeyFile, v.Format, err)
		}
	}
	return len(vectors)
}

func ledgerHead(t *testing.T, m *migrateEnv) string {
	t.Helper()
	// The enclave listing's creation times do not move with the ledger;
	// key details do: use the full key info list as the observable state.
	var b strings.Builder
	for _, e := range []string{"kes-current", "kes-v0191", "kes-v0223", "kes-v0230", "big", "conflicts"} {
		keys, err := m.c.ListKeyInfo(context.Background(), e, "")
		if err != nil {
			continue
		}
		json.NewEncoder(&b).Encode(keys)
	}
	return b.String()
}

// TestMigrateLarge migrates a generated keystore of 10,000 keys in every
// stored-value format, checks the counts and that a second run changes
// nothing, and reports keys/s.
func TestMigrateLarge(t *testing.T) {
	m := newMigrateEnv(t)
	ctx := context.Background()
	store := filepath.Join(t.TempDir(), "keys")
	const n = 10000
	if _, err := migratetest.WriteFSKeystore(store, n, rand.Reader); err != nil {
		t.Fatal(err)
	}
	if err := m.c.CreateEnclave(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	cfg := kesConfig(t, store)
	t.Setenv("MINIO_IDENTITY", strings.Repeat("ab", 32))
	start := time.Now()
	out, errOut, err := m.migrate("--from", cfg, "-e", "big")
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("migrate: %v\n%s\n%s", err, out, errOut)
	}
	if got := m.countKeys("big"); got != n {
		t.Fatalf("ls-key count = %d, want %d", got, n)
	}
	t.Logf("migrated %d keys in %s: %.0f keys/s (%s)", n, elapsed.Round(time.Millisecond), n/elapsed.Seconds(), strings.TrimSpace(out))
	out, _, err = m.migrate("--from", cfg, "-e", "big")
	if err != nil || !strings.Contains(out, fmt.Sprintf("imported 0, unchanged %d, skipped 0, replaced 0, failed 0", n)) {
		t.Fatalf("second run: %v %q", err, out)
	}
}

// TestMigrateBadInputAndConflicts: bad entries are reported and the rest
// imported; conflicts abort by default, --merge skips, --force replaces;
// --dry-run writes nothing.
func TestMigrateBadInputAndConflicts(t *testing.T) {
	m := newMigrateEnv(t)
	ctx := context.Background()
	store := t.TempDir()
	keys, err := migratetest.WriteFSKeystore(store, 5, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		"wrong-size":  `{"bytes":"AAEC"}`,
		"unknown-alg": `{"bytes":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `","algorithm":"DES"}`,
		"garbage":     "not a key",
	}
	for name, v := range bad {
		os.WriteFile(filepath.Join(store, name), []byte(v), 0o600)
	}
	// A name KES accepts but our subjects cannot carry.
	odd := "my.key with space"
	b, _ := os.ReadFile(filepath.Join(store, keys[0].Name))
	os.WriteFile(filepath.Join(store, odd), b, 0o600)

	if err := m.c.CreateEnclave(ctx, "conflicts"); err != nil {
		t.Fatal(err)
	}
	cfg := kesConfig(t, store)
	t.Setenv("MINIO_IDENTITY", strings.Repeat("ab", 32))

	before := ledgerHead(t, m)
	out, _, err := m.migrate("--from", cfg, "-e", "conflicts", "--dry-run")
	if err == nil || !strings.Contains(out, "dry run:") || ledgerHead(t, m) != before {
		t.Fatalf("dry run: err %v, out %q; it must report the 3 bad entries and write nothing", err, out)
	}

	out, errOut, err := m.migrate("--from", cfg, "-e", "conflicts")
	if err == nil || !strings.Contains(out, "imported 6,") || !strings.Contains(out, "failed 3") {
		t.Fatalf("migrate with bad entries: err %v out %q", err, out)
	}
	for name := range bad {
		if !strings.Contains(errOut, "FAILED "+name) {
			t.Errorf("no failure line for %s in %q", name, errOut)
		}
	}
	if !strings.Contains(errOut, `mapped "my.key with space" to "my_key_with_space-`) {
		t.Errorf("no mapping line in %q", errOut)
	}
	for name := range bad {
		os.Remove(filepath.Join(store, name))
	}

	// A key that exists with other material.
	checkConflictingKey(t, m, store, cfg, keys[1].Name)

	// Config with a missing ${ENV}.
	os.Unsetenv("MINIO_IDENTITY")
	if _, _, err := m.migrate("--from", cfg, "-e", "conflicts"); err == nil || !strings.Contains(err.Error(), "MINIO_IDENTITY") {
		t.Fatalf("missing ${ENV}: err = %v, want it named", err)
	}
}

// checkConflictingKey replaces the KES key victim of store (config cfg)
// with other material: a migration into enclave conflicts aborts naming
// the conflict, --merge skips the key, --force adds the KES material as
// its version 2.
func checkConflictingKey(t *testing.T, m *migrateEnv, store, cfg, victim string) {
	t.Helper()
	ctx := context.Background()
	other := filepath.Join(t.TempDir(), "other")
	if _, err := migratetest.WriteFSKeystore(other, 1, rand.Reader); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(other)
	b, _ := os.ReadFile(filepath.Join(other, entries[0].Name()))
	os.WriteFile(filepath.Join(store, victim), b, 0o600)
	out, _, err := m.migrate("--from", cfg, "-e", "conflicts")
	if err == nil || !strings.Contains(err.Error(), "with other material") {
		t.Fatalf("conflict: err %v out %q, want an abort naming the conflict", err, out)
	}
	out, _, err = m.migrate("--from", cfg, "-e", "conflicts", "--merge")
	if err != nil || !strings.Contains(out, "skipped 1") {
		t.Fatalf("--merge: err %v out %q", err, out)
	}
	out, _, err = m.migrate("--from", cfg, "-e", "conflicts", "--force")
	if err != nil || !strings.Contains(out, "replaced 1") {
		t.Fatalf("--force: err %v out %q", err, out)
	}
	info, err := m.c.KeyInfo(ctx, "conflicts", victim)
	if err != nil || len(info.Versions) != 2 || info.Versions[1].Source == nil {
		t.Fatalf("after --force: %+v %v, want two versions", info, err)
	}
	var replaced bool
	for _, v := range info.Versions {
		if v.Source != nil && v.Source.Kind == "kes-fs" && v.Version == 2 {
			replaced = true
		}
	}
	if !replaced {
		t.Fatalf("version 2 of %s is not the KES import: %+v", victim, info.Versions)
	}
}

// TestMigrateIntoTwoEnclaves migrates one KES store into two enclaves
// (the command ids name the enclave): both get every key, and its
// vectors decrypt in both; a re-run into either writes nothing.
func TestMigrateIntoTwoEnclaves(t *testing.T) {
	t.Setenv("MINIO_IDENTITY", strings.Repeat("ab", 32))
	m := newMigrateEnv(t)
	ctx := context.Background()
	dir := filepath.Join("..", "..", "testdata", "kes", "current", "fs-keystore")
	files, err := os.ReadDir(dir)
	if err != nil || len(files) == 0 {
		t.Fatalf("fixture %s: %d files, %v", dir, len(files), err)
	}
	cfg := kesConfig(t, dir)
	enclaves := []string{"copy-a", "copy-b"}
	for _, e := range enclaves {
		if err := m.c.CreateEnclave(ctx, e); err != nil {
			t.Fatal(err)
		}
		out, errOut, err := m.migrate("--from", cfg, "-e", e)
		if err != nil || !strings.Contains(out, fmt.Sprintf("imported %d,", len(files))) {
			t.Fatalf("migrate into %s: %v\n%s%s", e, err, out, errOut)
		}
		if got := m.countKeys(e); got != len(files) {
			t.Fatalf("%s holds %d keys, want %d", e, got, len(files))
		}
	}
	var vectors []struct {
		KeyFile    string `json:"key_file"`
		Context    string `json:"context_b64"`
		Plaintext  string `json:"plaintext_hex"`
		Ciphertext string `json:"ciphertext_b64"`
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "kes", "all-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &vectors); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range vectors {
		if !strings.HasPrefix(v.KeyFile, "current/") {
			continue
		}
		ct, _ := base64.StdEncoding.DecodeString(v.Ciphertext)
		ad, _ := base64.StdEncoding.DecodeString(v.Context)
		want, _ := hex.DecodeString(v.Plaintext)
		for _, e := range enclaves {
			d, err := m.c.Decrypt(ctx, e, filepath.Base(v.KeyFile), 0, ct, ad)
			if err != nil || !bytes.Equal(d.Plaintext, want) {
				t.Errorf("vector %s in %s: Decrypt err = %v", v.KeyFile, e, err)
			}
		}
		n++
	}
	if n == 0 {
		t.Fatal("no vectors of the current KES fixture")
	}
	before := map[string]string{}
	for _, e := range enclaves {
		keys, err := m.c.ListKeyInfo(ctx, e, "")
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(keys)
		before[e] = string(j)
	}
	for _, e := range enclaves {
		out, _, err := m.migrate("--from", cfg, "-e", e)
		if err != nil || !strings.Contains(out, fmt.Sprintf("imported 0, unchanged %d,", len(files))) {
			t.Fatalf("second migrate into %s: %v %q", e, err, out)
		}
		keys, err := m.c.ListKeyInfo(ctx, e, "")
		if err != nil {
			t.Fatal(err)
		}
		if j, _ := json.Marshal(keys); string(j) != before[e] {
			t.Errorf("second migrate changed the keys of %s", e)
		}
	}
}
