package migrate_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/migrate"
	"github.com/kmsledger/kmsledger/migrate/kescompat"
	"github.com/kmsledger/kmsledger/migrate/migratetest"
)

func TestFSVectors(t *testing.T) {
	t.Parallel()
	s, err := migrate.OpenFS(filepath.Join(vectorsDir, "current", "fs-keystore"))
	if err != nil {
		t.Fatalf("OpenFS err = %v", err)
	}
	if s.Kind() != migrate.KindFS || !filepath.IsAbs(s.Location()) || !strings.HasSuffix(s.Location(), "current/fs-keystore") {
		t.Errorf("Kind, Location = %q, %q", s.Kind(), s.Location())
	}
	names, err := s.List(t.Context())
	want := []string{"created-with-put", "imported-aes", "imported-chacha", "minio-default-key", "predefined-key"}
	if err != nil || !reflect.DeepEqual(names, want) {
		t.Fatalf("List = %q, %v, want %q", names, err, want)
	}
	for _, n := range names {
		v, err := s.Read(t.Context(), n)
		if err != nil {
			t.Fatalf("Read(%s) err = %v", n, err)
		}
		if _, err := migrate.ParseKeyValue(n, v); err != nil {
			t.Errorf("ParseKeyValue(%s) err = %v", n, err)
		}
	}
}

func TestOpenFSErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := migrate.OpenFS(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenFS(missing) err = %v, want ErrNotExist", err)
	}
	if _, err := migrate.OpenFS(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("OpenFS(file) err = %v, want 'not a directory'", err)
	}
	s, err := migrate.OpenFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Read(ctx, "file"); !errors.Is(err, context.Canceled) {
		t.Errorf("Read(cancelled ctx) err = %v, want context.Canceled", err)
	}
	for _, name := range []string{"", ".", "..", "../file", `a\b`} {
		if _, err := s.Read(t.Context(), name); !errors.Is(err, migrate.ErrName) {
			t.Errorf("Read(%q) err = %v, want ErrName", name, err)
		}
	}
}

// TestFSBadEntries builds the key store of the "bad input" list and
// checks that each bad entry fails alone, with its own clear error, while
// every good key still reads and parses.
func TestFSBadEntries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good, err := migratetest.WriteFSKeystore(dir, migratetest.NumFormats, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, value string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("wrong-size", `{"bytes":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"}`)
	write("unknown-algorithm", `{"version":"v1","bytes":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","algorithm":"AES128"}`)
	write("too-large", strings.Repeat("A", 1<<20+1))
	write("legacy.name", `{"bytes":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}`)
	// Unreadable: root can read a 0000 file, so use an entry that opens
	// but cannot be read (a symlink to a directory), and a dangling link.
	if err := os.Symlink(t.TempDir(), filepath.Join(dir, "unreadable")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := migrate.OpenFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	names, err := s.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(good)+6 {
		t.Fatalf("List = %d names %q, want %d (directories excluded)", len(names), names, len(good)+6)
	}
	wantErr := map[string]error{
		"wrong-size":        migrate.ErrKeySize,
		"unknown-algorithm": migrate.ErrUnknownAlgorithm,
		"too-large":         migrate.ErrKeyValue,
		"dangling":          migrate.ErrNotFound,
		"unreadable":        nil, // An I/O error of its own (EISDIR): checked below.
	}
	parsed := map[string]migrate.Key{}
	for _, n := range names {
		v, err := s.Read(t.Context(), n)
		if err == nil {
			var k migrate.Key
			if k, err = migrate.ParseKeyValue(n, v); err == nil {
				parsed[n] = k
				continue
			}
		}
		want, bad := wantErr[n]
		switch {
		case !bad:
			t.Errorf("%s: err = %v, want a key", n, err)
		case want == nil && (!strings.Contains(err.Error(), "is a directory") || !strings.Contains(err.Error(), `"unreadable"`)):
			t.Errorf("%s: err = %v, want a read error naming the key", n, err)
		case want != nil && (!errors.Is(err, want) || !strings.Contains(err.Error(), `"`+n+`"`)):
			t.Errorf("%s: err = %v, want %v naming the key", n, err, want)
		}
	}
	for _, g := range good {
		if !sameKey(parsed[g.Name], g) {
			t.Errorf("good key %s = %v, want %v", g.Name, parsed[g.Name], g)
		}
	}
	k, ok := parsed["legacy.name"]
	if mapped, err := kescompat.KeyName("legacy.name"); !ok || err != nil || mapped != "legacy_name-"+hash8("legacy.name") || !bytes.Equal(k.Material, material0to31()) {
		t.Errorf("legacy.name: parsed %v, mapped to %q, %v", ok, mapped, err)
	}
	if len(parsed) != len(good)+1 {
		t.Errorf("parsed %d keys, want %d", len(parsed), len(good)+1)
	}
}
