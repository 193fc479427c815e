package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
// whose write was acknowledged before an fsync round started needs no
// other. A round runs without w.mu held, so that callers arriving
// meanwhile register for the next round; when it ends, every caller it
// covered is woken at once (w.cond), none waits behind the next round.
// Block indexes only grow, so a few stats per round suffice.
//
// The watches of one Store share a lane: one round at a time among all
// its streams. A blocking fsync keeps its goroutine's P (one of the
// GOMAXPROCS slots that run Go code) until the runtime's monitor takes it
// back; with rounds of SECRETS and LEDGER in flight at once, a 2-core
// machine had both slots in fsync while the publishes, acks and wake-ups
// the next round waits for could not run, and creations used less than
// one core. On ext4 concurrent fsyncs of growing files each commit the
// journal and queue behind each other anyway (BENCHMARKS.md, "Key
// creation", fourth pass).
type blockWatch struct {
	dir  string      // <Dir>/jetstream/$G/streams/<stream>/msgs
	data bool        // fsync block files too (false: Config.NoSync)
	lane *sync.Mutex // held by a round: shared by the Store's watches

	// Touched only by the round in flight (one at a time, see running).
	last  uint64 // highest block index whose directory entry is durable
	dirty uint64 // lowest block index that may hold data not yet fsynced

	mu      sync.Mutex
	cond    sync.Cond     // signalled (L = &mu) when a round ends
	running bool          // a round is in flight
	started atomic.Uint64 // rounds started (written under mu)
	done    uint64        // rounds finished (rounds end in the order they start)
	failed  uint64        // the last round that failed, 0 if none did
	lastErr error         // its error
	syncs   uint64        // fsync rounds done (for tests and benchmarks)
	fail    error         // if set, every fsync round fails with it (tests)
}

// msgsDir returns the message directory of stream in the layout of
// nats-server v2 (global account "$G").
func msgsDir(dir, stream string) string {
	return filepath.Join(dir, "jetstream", "$G", "streams", stream, "msgs")
}

// blockFile returns the path of block i in the message directory msgs:
// "<i>.blk".
func blockFile(msgs string, i uint64) string {
	return filepath.Join(msgs, strconv.FormatUint(i, 10)+".blk")
}

// blockIndexes returns the indexes of the block files in msgs, in
// order; bad holds the ".blk" names that are not a block index (the
// server's indexes are 32-bit).
func blockIndexes(msgs string) (idx []uint64, bad []string, err error) {
	entries, err := os.ReadDir(msgs)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".blk"); ok {
			if i, err := strconv.ParseUint(n, 10, 32); err == nil {
				idx = append(idx, i)
			} else {
				bad = append(bad, e.Name())
			}
		}
	}
	slices.Sort(idx)
	return idx, bad, nil
}

// newBlockWatch records the existing blocks of a stream and makes them,
// the stream's files and their directory entries durable. It fails if
// the directory is not where the server is known to keep it, so a change
// of layout is caught at Open.
// lane is the Store's fsync lane (nil: a lane of its own).
func newBlockWatch(dir, stream string, data bool, lane *sync.Mutex) (*blockWatch, error) {
	if lane == nil {
		lane = new(sync.Mutex)
	}
	w := &blockWatch{dir: msgsDir(dir, stream), data: data, lane: lane}
	w.cond.L = &w.mu
	idx, _, err := blockIndexes(w.dir)
	if err != nil {
		return nil, fmt.Errorf("ledger: %s message directory: %w", stream, err)
	}
	if len(idx) > 0 {
		w.last = idx[len(idx)-1]
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
//
// Any round that starts after the call covers the write; a round in
// flight may not (the write may have been acknowledged after it began).
// So the caller needs round started+1 (started as read when it calls):
// it waits for the round in flight, if any, then runs the next one or,
// if another caller started it first, waits for that one. It fails if
// that round or a later one failed (a later failure may not concern its
// write: the error is then conservative, never a lost write reported as
// durable).
func (w *blockWatch) sync() error {
	if w == nil { // a replicated stream: durable through its Raft log
		return nil
	}
	// Read before taking mu: callers queued on mu while a round starts
	// were acknowledged before it and share it.
	target := w.started.Load() + 1
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.done < target {
		if w.running {
			w.cond.Wait()
			continue
		}
		w.running = true
		round, fail := w.started.Add(1), w.fail
		w.syncs++
		w.mu.Unlock()
		err := fail
		if err == nil {
			w.lane.Lock()
			err = w.flush()
			w.lane.Unlock()
		}
		w.mu.Lock()
		w.running, w.done = false, round
		if err != nil {
			w.failed, w.lastErr = round, err
		}
		w.cond.Broadcast()
	}
	if w.failed >= target {
		return w.lastErr
	}
	return nil
}

// flush is one fsync round, without w.mu held; only one runs at a time.
func (w *blockWatch) flush() error {
	last := w.last
	for {
		_, err := os.Stat(blockFile(w.dir, last+1))
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
			if err := syncFile(blockFile(w.dir, i)); err != nil {
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
