// Package ledgertest runs a real ledger.Store (embedded NATS server with
// JetStream, no network listener) for tests of packages that build on the
// ledger. There are no mocks: tests get the same streams, expectations and
// durability as production.
package ledgertest

import (
	"context"
	"testing"

	"github.com/kmsledger/kmsledger/ledger"
)

// Open opens a Store on a fresh tb.TempDir() and closes it in tb.Cleanup.
func Open(tb testing.TB) *ledger.Store {
	tb.Helper()
	return OpenDir(tb, tb.TempDir())
}

// OpenDir opens a Store on dir and closes it in tb.Cleanup. Close it
// earlier yourself and reopen with OpenDir to test restarts (Close is
// idempotent).
func OpenDir(tb testing.TB, dir string) *ledger.Store {
	tb.Helper()
	return OpenConfig(tb, ledger.Config{Dir: dir})
}

// OpenConfig opens a Store with cfg (on a fresh tb.TempDir() if cfg.Dir
// is "") and closes it in tb.Cleanup.
func OpenConfig(tb testing.TB, cfg ledger.Config) *ledger.Store {
	tb.Helper()
	if cfg.Dir == "" {
		cfg.Dir = tb.TempDir()
	}
	s, err := ledger.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("ledger.Open(%s) err = %v, want nil", cfg.Dir, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("ledger.Close() err = %v, want nil", err)
		}
	})
	return s
}
