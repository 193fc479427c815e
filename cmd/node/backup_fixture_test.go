package node_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/projections"
)

// TestRestoreBackupV1 restores the backup made by the first version of
// the format (testdata/backup-v1, never regenerated): it verifies, its
// state is what was backed up, and its keys decrypt what they encrypted.
func TestRestoreBackupV1(t *testing.T) {
	const fixture = "testdata/backup-v1"
	b, err := os.ReadFile(filepath.Join(fixture, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		HSMKey   string `json:"hsm_key"`
		Identity string `json:"identity"`
		DataKeys []struct {
			Key                            string
			Plaintext, Context, Ciphertext []byte
		} `json:"data_keys"`
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	hsms := []config.HSM{soft("soft", want.HSMKey)}
	dir := filepath.Join(t.TempDir(), "data")
	res, err := node.RestoreOffline(t.Context(), node.RestoreConfig{File: filepath.Join(fixture, "backup.db.gzip"), Dir: dir, HSMs: hsms})
	if err != nil {
		t.Fatalf("RestoreOffline(%s) err = %v, want nil", fixture, err)
	}
	if res.Verify.Checkpoints == 0 || res.Verify.Ledger.SignedThrough != res.Verify.Ledger.Last {
		t.Errorf("verification = %+v, want every event signed", res.Verify)
	}
	n := open(t, backupCfg(dir, hsms...))
	n.Proj.View(func(s *projections.State) {
		e := s.Enclaves["e"]
		switch {
		case e == nil:
			t.Fatal("enclave e is missing")
		case e.Keys["k1"] == nil || len(e.Keys["k1"].Versions()) != 2 || e.Keys["k2"] == nil:
			t.Errorf("keys = %v, want k1 (2 versions) and k2", e.Keys)
		case e.Keys["gone"] != nil:
			t.Error("the deleted key gone is back")
		case e.Policies["readers"] == nil || e.Identities[want.Identity] == nil:
			t.Errorf("policy readers or identity %s missing", want.Identity)
		}
	})
	c, _ := serveAt(t, n)
	var keys []sealed
	for _, k := range want.DataKeys {
		keys = append(keys, sealed{key: k.Key, plain: k.Plaintext, ctx: k.Context, ciphertext: k.Ciphertext})
	}
	if len(keys) != 3 {
		t.Fatalf("%d data keys in expected.json, want 3", len(keys))
	}
	checkDecrypts(t, c, keys)
}
