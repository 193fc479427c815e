//go:build unix

package ledger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile is the name of the advisory lock taken in the data directory.
const lockFile = "ledger.lock"

// lockDir takes an exclusive advisory lock (flock) on Dir/ledger.lock so
// that two servers never write the same JetStream store. The lock dies with
// the process, so a crash never leaves a stale lock behind.
func lockDir(dir string) (unlock func() error, err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("flock: %w", err)
	}
	return f.Close, nil // closing the descriptor releases the lock
}
