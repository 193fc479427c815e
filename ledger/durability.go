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
)

// blockWatch closes the one durability gap the file store leaves under
// SyncAlways (see doc.go): a new block file is fsynced, but its directory
// entry is only fsynced by the periodic sync. After each acknowledged
// write the Store checks whether the block after the last one it knows
// exists and, if so, fsyncs the message directory. Block indexes only
// grow, so one stat per write suffices.
type blockWatch struct {
	dir string // <Dir>/jetstream/$G/streams/<stream>/msgs

	mu   sync.Mutex
	last uint64 // highest block index whose directory entry is durable
}

// msgsDir returns the message directory of stream in the layout of
// nats-server v2 (global account "$G").
func msgsDir(dir, stream string) string {
	return filepath.Join(dir, "jetstream", "$G", "streams", stream, "msgs")
}

// newBlockWatch records the existing blocks of a stream and makes their
// directory entries durable. It fails if the directory is not where the
// server is known to keep it, so a change of layout is caught at Open.
func newBlockWatch(dir, stream string) (*blockWatch, error) {
	w := &blockWatch{dir: msgsDir(dir, stream)}
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
	if err := syncDir(w.dir); err != nil {
		return nil, fmt.Errorf("ledger: %s message directory: %w", stream, err)
	}
	return w, nil
}

// sync fsyncs the message directory if a block was created since the last
// call. It runs after the write was acknowledged, and before the write is
// reported to the caller.
func (w *blockWatch) sync() error {
	if w == nil { // a replicated stream: durable through its Raft log
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
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
	if last == w.last {
		return nil
	}
	if err := syncDir(w.dir); err != nil {
		return err
	}
	w.last = last
	return nil
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
