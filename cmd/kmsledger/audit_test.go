package main

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
)

// runCLI runs the kmsledger binary with hsmKey in the environment and
// returns its combined output and exit code.
func runAuditCLI(t *testing.T, hsmKey string, args ...string) (string, int) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KMSLEDGER_HSM_KEY="+hsmKey)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// auditServer runs a server on a fresh dir, makes a few requests, and
// stops it cleanly (SIGTERM), so that its ledger ends with a checkpoint.
func auditServer(t *testing.T) (dir, hsmKey string) {
	t.Helper()
	dir = t.TempDir()
	hsmKey, rootKey := newHSMKey(t)
	ctx := context.Background()
	p := startProcess(t, dir, hsmKey)
	c := p.client(t, dir, rootKey)
	for _, err := range []error{c.CreateEnclave(ctx, "e1"), c.CreateKey(ctx, "e1", "k1", "", false)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.GenerateKey(ctx, "e1", "k1", 0, []byte("ad"), 32); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("server exit: %v", err)
	}
	return dir, hsmKey
}

// TestAuditVerifyExportCommands: verify, export, export-key and verify
// --file on a cleanly stopped server; a changed byte makes verify exit 1.
func TestAuditVerifyExportCommands(t *testing.T) {
	dir, hsmKey := auditServer(t)
	out, code := runAuditCLI(t, hsmKey, "audit", "verify", dir)
	if code != 0 || !strings.Contains(out, "OK") || strings.Contains(out, "not yet signed") {
		t.Fatalf("audit verify: exit %d\n%s\nwant OK, everything signed", code, out)
	}
	// Only the right HSM vouches for the checkpoint key.
	other, _ := softkey.Generate(rand.Reader)
	if out, code := runAuditCLI(t, other, "audit", "verify", dir); code != 1 || !strings.Contains(out, "FAILED") {
		t.Fatalf("audit verify with another HSM key: exit %d\n%s\nwant 1, FAILED", code, out)
	}

	export := filepath.Join(t.TempDir(), "export.jsonl")
	if out, code := runAuditCLI(t, hsmKey, "audit", "export", dir, "--enclave", "e1", "-o", export); code != 0 {
		t.Fatalf("audit export: exit %d\n%s", code, out)
	}
	pem, code := runAuditCLI(t, hsmKey, "audit", "export-key", dir)
	if code != 0 || !strings.Contains(pem, "BEGIN PUBLIC KEY") {
		t.Fatalf("audit export-key: exit %d\n%s", code, pem)
	}
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, []byte(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runAuditCLI(t, "", "audit", "verify", "--file", export, "--public-key", keyFile); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("audit verify --file: exit %d\n%s", code, out)
	}

	b, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(b), `"KEY:GENERATE"`, `"KEY:DECRYPT"`, 1)
	if forged == string(b) {
		t.Fatal("the export discloses no KEY:GENERATE record")
	}
	if err := os.WriteFile(export, []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runAuditCLI(t, "", "audit", "verify", "--file", export, "--public-key", keyFile); code != 1 || !strings.Contains(out, "AUDIT seq") {
		t.Fatalf("audit verify --file of an edited export: exit %d\n%s\nwant 1 naming the AUDIT seq", code, out)
	}

	blk := filepath.Join(dir, "jetstream", "$G", "streams", "LEDGER", "msgs", "1.blk")
	data, err := os.ReadFile(blk)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x20
	if err := os.WriteFile(blk, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runAuditCLI(t, hsmKey, "audit", "verify", dir); code != 1 || !strings.Contains(out, "FAILED") {
		t.Fatalf("audit verify after a changed byte: exit %d\n%s\nwant 1, FAILED", code, out)
	}
}

// TestAuditKillDashNine answers requests one at a time from a server
// with --audit-interval 1h --audit-batch 8, kills it with SIGKILL, and
// counts the audit records on disk: at most 8 of the answered requests
// are missing (those still buffered).
func TestAuditKillDashNine(t *testing.T) {
	const batch, requests = 8, 29
	t.Setenv("KMSLEDGER_AUDIT_INTERVAL", "1h")
	t.Setenv("KMSLEDGER_AUDIT_BATCH", "8")
	dir := t.TempDir()
	hsmKey, rootKey := newHSMKey(t)
	ctx := context.Background()
	p := startProcess(t, dir, hsmKey)
	c := p.client(t, dir, rootKey)
	if err := c.CreateEnclave(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	answered := 1
	for i := range requests {
		if _, err := c.KeyStatus(ctx, "e1", "missing", uint32(i)); err == nil {
			t.Fatal("KeyStatus of a missing key err = nil")
		}
		answered++
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	c.Close()

	s, err := ledger.Open(ctx, ledger.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stored := 0
	if err := s.AuditRecords(ctx, 1, 0, func(uint64, ledger.AuditRecord) error { stored++; return nil }); err != nil {
		t.Fatal(err)
	}
	lost := answered - stored
	if lost < 0 || lost > batch {
		t.Fatalf("%d answered requests, %d audit records stored: %d lost, want 0..%d", answered, stored, lost, batch)
	}
	t.Logf("kill -9 after %d answered requests: %d records stored, %d lost (bound %d)", answered, stored, lost, batch)
}

// TestAuditSIGTERMStoresEveryRecord answers requests from a server with
// --audit-interval 1h --audit-batch 8 (so records stay buffered), stops
// it with SIGTERM, and finds a record for every answered request: a
// normal shutdown loses none.
func TestAuditSIGTERMStoresEveryRecord(t *testing.T) {
	const requests = 13
	t.Setenv("KMSLEDGER_AUDIT_INTERVAL", "1h")
	t.Setenv("KMSLEDGER_AUDIT_BATCH", "8")
	dir := t.TempDir()
	hsmKey, rootKey := newHSMKey(t)
	ctx := context.Background()
	p := startProcess(t, dir, hsmKey)
	c := p.client(t, dir, rootKey)
	if err := c.CreateEnclave(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	for i := range requests {
		if _, err := c.KeyStatus(ctx, "e1", "missing", uint32(i)); err == nil {
			t.Fatal("KeyStatus of a missing key err = nil")
		}
	}
	c.Close()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("server exit after SIGTERM: %v", err)
	}

	s, err := ledger.Open(ctx, ledger.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stored := 0
	if err := s.AuditRecords(ctx, 1, 0, func(uint64, ledger.AuditRecord) error { stored++; return nil }); err != nil {
		t.Fatal(err)
	}
	if answered := 1 + requests; stored != answered {
		t.Fatalf("%d answered requests, %d audit records stored after SIGTERM, want all", answered, stored)
	}
}
