package node_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/ledger"
)

// stoppedNode runs a node with auditing and checkpoints on a fresh dir,
// serves a few requests and closes it; it returns the dir and its HSMs.
func stoppedNode(t *testing.T) (string, []config.HSM) {
	t.Helper()
	dir := t.TempDir()
	hsms := []config.HSM{soft("soft", newSoftKey(t))}
	n := open(t, node.Config{Dir: dir, HSMs: hsms,
		Audit: &ledger.AuditConfig{Interval: time.Hour, Batch: 64}, Checkpoints: &ledger.CheckpointConfig{Events: 1 << 20, Interval: time.Hour}})
	c, _ := serve(t, n)
	if err := c.CreateEnclave(t.Context(), "e1"); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, hsms
}

// TestVerifyOffline: a cleanly stopped node verifies, everything signed,
// with the HSM that vouches for its checkpoint key; another HSM, no HSM,
// a running node's dir and a missing dir are refused.
func TestVerifyOffline(t *testing.T) {
	dir, hsms := stoppedNode(t)
	res, err := node.VerifyOffline(t.Context(), dir, hsms, 0)
	if err != nil || res.KeyErr != nil || res.Report == nil || res.Report.Checkpoints == 0 || res.Report.Ledger.SignedThrough != res.Report.Ledger.Last {
		t.Fatalf("VerifyOffline = %+v, %v; want verified and signed through the end", res, err)
	}

	other := []config.HSM{soft("other", newSoftKey(t))}
	if res, err := node.VerifyOffline(t.Context(), dir, other, 0); !errors.Is(err, node.ErrVerify) || res.KeyErr == nil {
		t.Fatalf("VerifyOffline with another HSM = %+v, %v; want ErrVerify and a KeyErr", res, err)
	}
	if res, err := node.VerifyOffline(t.Context(), dir, nil, 0); !errors.Is(err, node.ErrVerify) || !errors.Is(res.KeyErr, node.ErrNoHSM) || res.Report == nil {
		t.Fatalf("VerifyOffline without HSM = %+v, %v; want ErrVerify, ErrNoHSM and the chains checked", res, err)
	}
	if _, err := node.VerifyOffline(t.Context(), filepath.Join(dir, "missing"), hsms, 0); err == nil || errors.Is(err, node.ErrVerify) {
		t.Fatalf("VerifyOffline of a missing dir err = %v; want a plain error", err)
	}

	running := t.TempDir()
	open(t, node.Config{Dir: running, HSMs: hsms})
	if _, err := node.VerifyOffline(t.Context(), running, hsms, 0); !errors.Is(err, ledger.ErrLocked) || errors.Is(err, node.ErrVerify) {
		t.Fatalf("VerifyOffline of a running node's dir err = %v; want ErrLocked", err)
	}
}

// TestExportOfflineAndVerifyExport: the exported keys and export verify
// outside the data dir; a changed byte, another key, and an existing
// output file are refused.
func TestExportOfflineAndVerifyExport(t *testing.T) {
	dir, hsms := stoppedNode(t)
	keys, rejected, err := node.OfflineKeys(t.Context(), dir, hsms)
	if err != nil || len(keys) == 0 || len(rejected) != 0 {
		t.Fatalf("OfflineKeys = %v, %v, %v; want the checkpoint key", keys, rejected, err)
	}
	if _, _, err := node.OfflineKeys(t.Context(), dir, []config.HSM{soft("other", newSoftKey(t))}); err == nil {
		t.Fatal("OfflineKeys with another HSM err = nil, want an error")
	}
	var pemBuf bytes.Buffer
	if err := node.WritePublicKeys(&pemBuf, keys); err != nil {
		t.Fatal(err)
	}
	parsed, err := node.ParsePublicKeys("keys.pem", pemBuf.Bytes())
	if err != nil || len(parsed) != len(keys) {
		t.Fatalf("ParsePublicKeys = %v, %v; want %v", parsed, err, keys)
	}
	for id, k := range keys {
		if !k.Equal(parsed[id]) {
			t.Fatalf("key %s does not round-trip", id)
		}
	}

	file := filepath.Join(t.TempDir(), "export.jsonl")
	events, records, err := node.ExportOffline(t.Context(), dir, ledger.ExportFilter{}, file, nil)
	if err != nil || events == 0 || records == 0 {
		t.Fatalf("ExportOffline = %d, %d, %v; want events and records", events, records, err)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("export file %v, %v; want mode 0600", st, err)
	}
	if _, _, err := node.ExportOffline(t.Context(), dir, ledger.ExportFilter{}, file, nil); !errors.Is(err, os.ErrExist) {
		t.Fatalf("ExportOffline onto an existing file err = %v, want ErrExist", err)
	}
	missingOut := filepath.Join(t.TempDir(), "never.jsonl")
	if _, _, err := node.ExportOffline(t.Context(), filepath.Join(dir, "missing"), ledger.ExportFilter{}, missingOut, nil); err == nil {
		t.Fatal("ExportOffline of a missing dir err = nil")
	}
	if _, err := os.Stat(missingOut); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed export created its output file: %v", err)
	}

	export, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := node.VerifyExport(bytes.NewReader(export), parsed); err != nil || rep.Checkpoints == 0 {
		t.Fatalf("VerifyExport = %+v, %v; want verified", rep, err)
	}
	tampered := bytes.Replace(export, []byte(`"e1"`), []byte(`"e2"`), 1)
	if bytes.Equal(tampered, export) {
		t.Fatal("export does not name enclave e1")
	}
	if _, err := node.VerifyExport(bytes.NewReader(tampered), parsed); !errors.Is(err, node.ErrVerify) {
		t.Fatalf("VerifyExport of a changed export err = %v, want ErrVerify", err)
	}
}

// TestParsePublicKeysRefuses: no PEM block, a non-Ed25519 key and a
// garbled key are refused.
func TestParsePublicKeysRefuses(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"empty":   nil,
		"no pem":  []byte("not a key"),
		"other":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"ecdsa":   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"garbled": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der[:10]}),
	} {
		if keys, err := node.ParsePublicKeys(name, b); err == nil {
			t.Errorf("%s: ParsePublicKeys = %v, nil; want an error", name, keys)
		}
	}
}
