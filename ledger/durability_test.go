package ledger

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestBlockWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	msgs := msgsDir(dir, "S")
	if err := os.MkdirAll(msgs, 0o700); err != nil {
		t.Fatal(err)
	}
	touch := func(names ...string) {
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(msgs, n), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	touch("1.blk", "2.blk", "index.db", "3.blk.tmp")
	w, err := newBlockWatch(dir, "S", true, nil)
	if err != nil || w.last != 2 {
		t.Fatalf("newBlockWatch = (last %d, %v), want (2, nil)", w.last, err)
	}
	steps := []struct {
		create []string
		want   uint64
	}{
		{nil, 2},
		{[]string{"index.db.tmp"}, 2},
		{[]string{"3.blk"}, 3},
		{[]string{"4.blk", "5.blk"}, 5},
		{[]string{"7.blk"}, 5}, // not the next block
	}
	for _, st := range steps {
		touch(st.create...)
		if err := w.sync(); err != nil || w.last != st.want {
			t.Fatalf("after creating %q: sync() = (last %d, %v), want (%d, nil)", st.create, w.last, err, st.want)
		}
	}
	if _, err := newBlockWatch(dir, "MISSING", true, nil); err == nil {
		t.Fatalf("newBlockWatch(missing stream dir) err = nil, want an error")
	}
}

// TestBlockWatchLane shows that the watches of one Store run one fsync
// round at a time: while the lane is held (as by a round of another
// stream), a round of LEDGER starts but does not finish; it finishes once
// the lane is free. It also checks that Open gives every watch the
// Store's lane.
func TestBlockWatchLane(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	w := s.ledgerBlocks
	if w.lane != &s.fsyncLane || s.secretsBlocks.lane != &s.fsyncLane || s.chains.auditBlocks.lane != &s.fsyncLane {
		t.Fatalf("the watches of LEDGER, SECRETS and AUDIT do not share the Store's fsync lane")
	}
	s.fsyncLane.Lock()
	done := make(chan error, 1)
	go func() { done <- w.sync() }()
	waitFor(t, waitTimeout, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.running
	})
	// A round that ignored the lane would finish within this grace; one
	// that waits for it cannot finish however long it is.
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-done:
		s.fsyncLane.Unlock()
		t.Fatalf("sync() = %v while another round held the lane, want it to wait", err)
	default:
	}
	s.fsyncLane.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("sync() after the lane was freed = %v, want nil", err)
	}
}
