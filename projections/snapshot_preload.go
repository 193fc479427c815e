package projections

import (
	"context"
	"log/slog"
	"time"
)

// Preload is a snapshot read ahead of OpenWith, while the caller opens
// the ledger: ledger.Open recovers the streams (seconds for a ledger of a
// million events), and the snapshot of a million keys takes about as long
// to decode; on a machine with two cores or more the two overlap.
//
// Preloading skips no check. PreloadSnapshot does what OpenWith does
// with a file before it asks the ledger anything: it opens the newest
// file under the REK, authenticates and decodes every chunk, and checks
// the state against the header. OpenWith (Options.Preloaded) then checks
// the header's chain value against the ledger's at that sequence and
// replays the tail with every link checked, as for a snapshot it read
// itself; if the chain value does not match it reads the older files,
// and at last replays the whole ledger.
type Preload struct {
	dir  string
	done chan struct{} // closed when the fields below are set
	path string        // the file read; "" if none could be
	st   *State
	h    *snapHeader
	ok   bool          // every file was tried (ctx did not end first)
	took time.Duration // from PreloadSnapshot to done
}

// PreloadSnapshot starts reading the newest snapshot of cfg that opens
// and decodes, in the background; cfg is the configuration OpenWith will
// be given. Files that cannot be used are logged and skipped. It returns
// nil if cfg loads no snapshot. The reading stops early if ctx ends;
// OpenWith then reads the files itself.
func PreloadSnapshot(ctx context.Context, cfg *SnapshotConfig, log *slog.Logger) *Preload {
	if cfg == nil || cfg.Dir == "" || cfg.Unseal == nil {
		return nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pre := &Preload{dir: cfg.Dir, done: make(chan struct{})}
	start := time.Now()
	go func() {
		defer func() {
			pre.took = time.Since(start)
			close(pre.done)
		}()
		for _, path := range snapFiles(cfg.Dir) {
			st, h, err := readSnapshot(ctx, path, cfg.Unseal, nil, nil)
			if err == nil {
				pre.path, pre.st, pre.h, pre.ok = path, st, h, true
				return
			}
			if ctx.Err() != nil {
				return
			}
			log.Warn("projection snapshot not used", "file", path, "err", err)
		}
		pre.ok = true
	}()
	return pre
}

// wait returns what pre read: the file, its state and header, or a nil
// state if no file could be used; ok is false if pre stopped early or ctx
// ended first (the files must be read again).
func (pre *Preload) wait(ctx context.Context) (path string, st *State, h *snapHeader, ok bool) {
	select {
	case <-pre.done:
		return pre.path, pre.st, pre.h, pre.ok
	case <-ctx.Done():
		return "", nil, nil, false
	}
}

// setDropped sets s's State.dropped, for a state decoded before its
// Projection existed.
func (s *State) setDropped(f func(*Version)) {
	s.dropped = f
	for _, e := range s.Enclaves {
		e.drop = f
	}
}
