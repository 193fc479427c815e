package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/cmd/clientcmd"
)

// update rewrites the golden files: go test ./cmd/kmsledger -run TestGolden -update
var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// golden compares got with testdata/name.golden (or, with -update,
// writes it).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s output differs from %s (run with -update if the change is intended)\ngot:\n%s\nwant:\n%s", name, file, got, want)
	}
}

// goldenKey is a key with an enabled imported version that was used, and
// a disabled one that was not.
func goldenKey() *wire.KeyInfo {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	used, deadline := t0.Add(48*time.Hour), t0.Add(30*24*time.Hour)
	return &wire.KeyInfo{Name: "minio-key", State: "pending-deletion", DeletionDeadline: &deadline, CreatedAt: t0, CreatedBy: "h1:root",
		Versions: []wire.VersionInfo{
			{Version: 1, Type: "AES256", State: "disabled", CreatedAt: t0, CreatedBy: "h1:root", Fingerprint: "fp1",
				CiphertextFormat: 2, CiphertextAEAD: "XAES-256-GCM"},
			{Version: 2, Type: "ChaCha20", State: "enabled", CreatedAt: t0.Add(time.Hour), CreatedBy: "h1:admin", Fingerprint: "fp2",
				LastUsed: &used, Source: &wire.ImportSource{Kind: "kes", Name: "old-key"},
				CiphertextFormat: 2, CiphertextAEAD: "XChaCha20-Poly1305",
				Usage: wire.VersionUsage{Encryptions: 12, Decryptions: 34, OldFormatDecryptions: 5}},
		}}
}

// TestGoldenStatKey: stat-key's text, of every version and of one, and
// its JSON.
func TestGoldenStatKey(t *testing.T) {
	for name, only := range map[string]uint32{"stat-key": 0, "stat-key-version": 2} {
		var b bytes.Buffer
		if err := clientcmd.PrintKeyInfo(&b, goldenKey(), only); err != nil {
			t.Fatal(err)
		}
		golden(t, name, b.Bytes())
	}
	var b bytes.Buffer
	if err := clientcmd.PrintJSON(&b, goldenKey()); err != nil {
		t.Fatal(err)
	}
	golden(t, "stat-key-json", b.Bytes())
}

// TestGoldenLsKey: ls-key's text names a key's state unless it is
// enabled; an empty list prints nothing as text and [] as JSON.
func TestGoldenLsKey(t *testing.T) {
	keys := []wire.KeyInfo{{Name: "a", State: "enabled"}, {Name: "b", State: "disabled"}, {Name: "c", State: "pending-deletion"}}
	var text, empty, emptyJSON bytes.Buffer
	for _, r := range []struct {
		w      *bytes.Buffer
		asJSON bool
		keys   []wire.KeyInfo
	}{{&text, false, keys}, {&empty, false, nil}, {&emptyJSON, true, nil}} {
		if err := clientcmd.PrintKeyList(r.w, r.asJSON, r.keys); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "ls-key", text.Bytes())
	if empty.Len() != 0 || emptyJSON.String() != "[]\n" {
		t.Errorf("empty ls-key = %q, --json %q; want nothing and []", empty.String(), emptyJSON.String())
	}
}

// TestGoldenGetPolicy: get-policy's text and JSON.
func TestGoldenGetPolicy(t *testing.T) {
	p := &wire.PolicyResponse{Name: "minio", Allow: map[string][]string{"KEY:GENERATE": {"minio-*"}, "KEY:DECRYPT": {"minio-*", "shared"}},
		Deny: map[string][]string{"KEY:DELETE": {"*"}}, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), CreatedBy: "h1:root"}
	for name, asJSON := range map[string]bool{"get-policy": false, "get-policy-json": true} {
		var b bytes.Buffer
		if err := clientcmd.PrintPolicy(&b, asJSON, p); err != nil {
			t.Fatal(err)
		}
		golden(t, name, b.Bytes())
	}
}
