package node_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
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
	n, _ := nodeWithKeys(t, cfg, "a", "b", "c")
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

// TestNodeWarmsKeyCache: keys created before a restart are in the key
// cache after it without being used (the warm-up at start), and only
// the usable ones: a disabled key's version is not.
func TestNodeWarmsKeyCache(t *testing.T) {
	dir := t.TempDir()
	cfg := node.Config{Dir: dir, HSMs: []config.HSM{soft("soft", newSoftKey(t))}, Addr: "127.0.0.1:0"}
	n, c := nodeWithKeys(t, cfg, "a", "b", "c", "off")
	if err := c.DisableKey(t.Context(), "e", "off", 0); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	again := open(t, cfg)
	deadline := time.Now().Add(20 * time.Second)
	for again.Proj.KeyCacheStats().Size < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a fourth would come now
	if st := again.Proj.KeyCacheStats(); st.Size != 3 || st.Hits+st.Misses != 0 {
		t.Fatalf("key cache after the restart: %d versions, %d hits, %d misses; want the 3 usable keys, unused", st.Size, st.Hits, st.Misses)
	}
	if n := sealedLen(t, again, "e", "a"); n != 66 {
		t.Errorf("sealed material of e/a: %d bytes, want 66 (a single node writes the compact form)", n)
	}
}

// nodeWithKeys opens a node on cfg, serving, with enclave "e" and the
// keys named.
func nodeWithKeys(t *testing.T, cfg node.Config, keys ...string) (*node.Node, *client.Client) {
	t.Helper()
	n := open(t, cfg)
	c, _ := serve(t, n)
	if err := c.CreateEnclave(t.Context(), "e"); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := c.CreateKey(t.Context(), "e", k, "", false); err != nil {
			t.Fatal(err)
		}
	}
	return n, c
}
