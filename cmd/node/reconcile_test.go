package node_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
)

// TestReconcileMarkAtStart: each start erases, in its first pass beside
// serving, the material stored for nothing since the last one, however
// young, and keeps its mark in the data directory; a mark that is
// unreadable or beyond the streams (another ledger's) is not trusted:
// everything is checked.
func TestReconcileMarkAtStart(t *testing.T) {
	dir := t.TempDir()
	cfg := node.Config{Dir: dir, HSMs: []config.HSM{soft("soft", newSoftKey(t))}, SchedulerInterval: -1}
	ctx := context.Background()
	markPath := filepath.Join(dir, "reconciled.json")
	n := open(t, cfg)
	if _, err := n.Handler.Execute(ctx, n.RootID, "", commands.CreateEnclave{Name: "e"}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Handler.Execute(ctx, n.RootID, "", commands.CreateKey{Enclave: "e", Name: "k"}); err != nil {
		t.Fatal(err)
	}
	keep, err := n.Store.ListSecrets(ctx, "")
	if err != nil || len(keep) != 1 {
		t.Fatalf("ListSecrets = %v, %v; want the key's material", keep, err)
	}
	for _, mark := range []string{"", `{"ledger":1,"secrets":1}`, `not json`, `{"ledger":999999999,"secrets":1}`, `{"ledger":1,"secrets":999999999}`} {
		orphan := ledger.AttemptSecretRef("e", "orphan", 1, commands.NewID())
		if err := n.Store.PutSecret(ctx, orphan, []byte("sealed")); err != nil {
			t.Fatal(err)
		}
		n.Close()
		if mark != "" {
			if err := os.WriteFile(markPath, []byte(mark), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		n = open(t, cfg) // and its first pass
		if got, _ := n.Store.ListSecrets(ctx, ""); !slices.Equal(got, keep) {
			t.Errorf("mark %q: after a restart the material is %v, want only %v", mark, got, keep)
		}
		var m commands.ReconcileMark
		b, _ := os.ReadFile(markPath)
		head, _ := n.Store.Head(ctx)
		last, _ := n.Store.SecretsLastSeq(ctx)
		if err := json.Unmarshal(b, &m); err != nil || m.Ledger != head || m.Secrets != last {
			t.Errorf("mark %q: saved mark %s, want the heads (%d, %d)", mark, b, head, last)
		}
	}
}
