package node_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/projections"
)

// keyCount is the number of keys of enclave e in n's projection.
func keyCount(n *node.Node) int {
	c := -1
	n.Proj.View(func(s *projections.State) {
		if e := s.Enclaves["e"]; e != nil {
			c = len(e.Keys)
		}
	})
	return c
}

// TestNodeStartsFromSnapshot: a node closed cleanly leaves a snapshot in
// DIR/snapshots and the next start uses it; a snapshot file that was cut
// short is not used and the node starts by a full replay, with the same
// keys either way.
func TestNodeStartsFromSnapshot(t *testing.T) {
	dir := t.TempDir()
	cfg := node.Config{Dir: dir, HSMs: []config.HSM{soft("soft", newSoftKey(t))}, Addr: "127.0.0.1:0"}
	n := open(t, cfg)
	c, _ := serve(t, n)
	if err := c.CreateEnclave(t.Context(), "e"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if err := c.CreateKey(t.Context(), "e", k, "", false); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, node.SnapshotDir, "projection-*.snap"))
	if len(files) != 1 {
		t.Fatalf("snapshot files after Close = %v, want one", files)
	}
	again := open(t, cfg)
	if again.Proj.StartedFrom() == 0 || keyCount(again) != 3 {
		t.Fatalf("restart: started from %d with %d keys, want a snapshot and 3 keys", again.Proj.StartedFrom(), keyCount(again))
	}
	again.Close()

	files, _ = filepath.Glob(filepath.Join(dir, node.SnapshotDir, "projection-*.snap"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, b[:len(b)/2], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	third := open(t, cfg)
	if third.Proj.StartedFrom() != 0 || keyCount(third) != 3 {
		t.Fatalf("cut snapshots: started from %d with %d keys, want a full replay and 3 keys", third.Proj.StartedFrom(), keyCount(third))
	}
}
