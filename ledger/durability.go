package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// blockWatch makes a single server's acknowledged writes durable (see
// doc.go, Durability). The server runs without SyncAlways: it writes
// every record to its block file before the ack but leaves the fsync to
// the Store. After each acknowledged write, and before reporting it, the
// Store calls sync, which fsyncs the block files written since the last
// sync and, when a block file was created, the message directory (its
// entry). Concurrent callers share one fsync (group commit): a caller
// whose write was acknowledged before an fsync started needs no other.
// Block indexes only grow, so a few stats per sync suffice.
type blockWatch struct {
	dir  string // <Dir>/jetstream/$G/streams/<stream>/msgs
	data bool   // fsync block files too (false: Config.NoSync)

	started atomic.Uint64 // fsyncs started (under mu)

	mu      sync.Mutex
	last    uint64 // highest block index whose directory entry is durable
	dirty   uint64 // lowest block index that may hold data not yet fsynced
	done    uint64 // fsyncs finished
	lastErr error  // outcome of the last fsync
	syncs   uint64 // fsync rounds done (for tests and benchmarks)
	fail    error  // if set, every fsync round fails with it (tests)
}

// msgsDir returns the message directory of stream in the layout of
// nats-server v2 (global account "$G").
func msgsDir(dir, stream string) string {
	return filepath.Join(dir, "jetstream", "$G", "streams", stream, "msgs")
}

// newBlockWatch records the existing blocks of a stream and makes them,
// the stream's files and their directory entries durable. It fails if
// the directory is not where the server is known to keep it, so a change
// of layout is caught at Open.
func newBlockWatch(dir, stream string, data bool) (*blockWatch, error) {
	w := &blockWatch{dir: msgsDir(dir, stream), data: data}
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return nil, fmt.Errorf("ledger: %s message directory: %w", stream, err)
	}
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".blk"); ok {
			if i, err := strconv.ParseUint(n, 10, 64); err == nil {
				w.last = max(w.last, i)
			}
		}
	}
	w.dirty = w.last
	if data {
		// The stream's files (its configuration included) were written
		// without SyncAlways: make them durable once.
		if err := syncTree(filepath.Dir(w.dir)); err != nil {
			return nil, fmt.Errorf("ledger: %s: %w", stream, err)
		}
	}
	if err := syncDir(w.dir); err != nil {
		return nil, fmt.Errorf("ledger: %s message directory: %w", stream, err)
	}
	return w, nil
}

// sync makes every write acknowledged before the call durable: it fsyncs
// the block files written since the last fsync and, if a block was
// created, the message directory. It runs after the write was
// acknowledged, and before the write is reported to the caller.
func (w *blockWatch) sync() error {
	if w == nil { // a replicated stream: durable through its Raft log
		return nil
	}
	before := w.started.Load()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done > before {
		// An fsync that started after this write was acknowledged has
		// finished: it covered the write.
		return w.lastErr
	}
	w.started.Add(1)
	w.lastErr = w.flush()
	w.done = w.started.Load()
	return w.lastErr
}

// flush is one fsync round, with w.mu held.
func (w *blockWatch) flush() error {
	w.syncs++
	if w.fail != nil {
		return w.fail
	}
	last := w.last
	for {
		_, err := os.Stat(filepath.Join(w.dir, strconv.FormatUint(last+1, 10)+".blk"))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("ledger: stat block: %w", err)
		}
		last++
	}
	if w.data {
		for i := max(w.dirty, 1); i <= last; i++ {
			if err := syncFile(filepath.Join(w.dir, strconv.FormatUint(i, 10)+".blk")); err != nil {
				return err
			}
		}
		w.dirty = last
	}
	if last == w.last {
		return nil
	}
	if err := syncDir(w.dir); err != nil {
		return err
	}
	w.last = last
	return nil
}

// syncFile fsyncs a file; a file that no longer exists (a block removed
// once empty) needs none.
func syncFile(name string) error {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: sync %s: %w", name, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ledger: sync %s: %w", name, err)
	}
	return nil
}

// syncTree fsyncs every file and directory under dir, and dir's parent
// directories up to the data directory's "jetstream".
func syncTree(dir string) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return syncDir(p)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return syncFile(p)
	})
	if err != nil {
		return err
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		if err := syncDir(p); err != nil {
			return err
		}
		if filepath.Base(p) == "jetstream" || p == filepath.Dir(p) {
			return nil
		}
	}
}

// syncDir fsyncs a directory, making renames and new entries in it
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("ledger: sync dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ledger: sync dir %s: %w", dir, err)
	}
	return nil
}
