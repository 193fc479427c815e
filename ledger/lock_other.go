//go:build !unix

package ledger

// lockDir is a no-op where flock is unavailable: the caller must make sure
// that only one process opens a data directory.
func lockDir(string) (func() error, error) { return func() error { return nil }, nil }
