// Key stores a migration reads from, and the fs key store.
//
// The fs key store is a directory with one file per key:
// the file name is the key name and the content is the stored value, with
// no trailing newline. Sub-directories are not keys and are not listed.

package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Source kinds, as recorded in provenance.
const (
	KindFS    = "kes-fs"
	KindVault = "kes-vault"
)

var (
	// ErrNotFound means a listed key has no value (any more).
	ErrNotFound = errors.New("migrate: key not found in KES key store")
	// ErrUnsupported means a config names a key store this package cannot read.
	ErrUnsupported = errors.New("migrate: unsupported KES key store")
)

// Source is a KES key store, read-only. Implementations: *FS and *Vault.
type Source interface {
	// List returns the names of all keys, sorted.
	List(ctx context.Context) ([]string, error)
	// Read returns the stored value of one key (see ParseKeyValue). A name
	// without a value gives an error wrapping ErrNotFound.
	Read(ctx context.Context, name string) ([]byte, error)
	// Kind returns KindFS or KindVault.
	Kind() string
	// Location identifies the key store (a path or a URL) for provenance;
	// it never contains credentials.
	Location() string
}

var (
	_ Source = (*FS)(nil)
	_ Source = (*Vault)(nil)
)

// Open opens the key store a config names. httpClient is used for Vault;
// nil means NewVaultHTTPClient(cfg.Keystore.Vault.TLS).
func Open(ctx context.Context, c *Config, httpClient *http.Client) (Source, error) {
	switch c.Keystore.Kind {
	case "fs":
		return OpenFS(c.Keystore.FS.Path)
	case "vault":
		return OpenVault(ctx, *c.Keystore.Vault, httpClient)
	case "":
		return nil, fmt.Errorf("%w: the config has no keystore (KES keeps keys in memory)", ErrUnsupported)
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, c.Keystore.Kind)
}

// FS is a KES fs key store.
type FS struct {
	dir string
}

// OpenFS opens the fs key store in dir, which must be a directory.
func OpenFS(dir string) (*FS, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("migrate: open fs key store %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("migrate: open fs key store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("migrate: open fs key store %s: not a directory", abs)
	}
	return &FS{dir: abs}, nil
}

// Kind returns KindFS.
func (s *FS) Kind() string { return KindFS }

// Location returns the absolute path of the directory.
func (s *FS) Location() string { return s.dir }

// List returns the names of all entries that are not directories, sorted.
func (s *FS) List(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("migrate: list fs key store: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, ctx.Err()
}

// Read returns the content of the file name. Values larger than KES's
// 1 MiB limit are refused.
func (s *FS) Read(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return nil, fmt.Errorf("%w: %q", ErrName, name)
	}
	f, err := os.Open(filepath.Join(s.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q: %v", ErrNotFound, name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("migrate: read key %q: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("migrate: read key %q: %w", name, err)
	}
	if len(b) > maxSize {
		clear(b)
		return nil, fmt.Errorf("%w %q: more than KES's 1 MiB limit", ErrKeyValue, name)
	}
	return b, nil
}
