package ledger

import (
	"os"
	"path/filepath"
	"testing"
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
	w, err := newBlockWatch(dir, "S", true)
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
	if _, err := newBlockWatch(dir, "MISSING", true); err == nil {
		t.Fatalf("newBlockWatch(missing stream dir) err = nil, want an error")
	}
}
