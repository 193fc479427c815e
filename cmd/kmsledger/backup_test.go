package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBackupRestoreCommands: `backup` from a running server (default file
// name), `restore` into a new data dir with the right HSM key (refused
// with another, and for a changed byte), and a server started on the
// restored dir decrypts what the first one encrypted.
func TestBackupRestoreCommands(t *testing.T) {
	dir := t.TempDir()
	hsmKey, rootKey := newHSMKey(t)
	ctx := context.Background()
	p := startProcess(t, dir, hsmKey)
	c := p.client(t, dir, rootKey)
	if err := c.CreateEnclave(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateKey(ctx, "e1", "k1", "", false); err != nil {
		t.Fatal(err)
	}
	dk, err := c.GenerateKey(ctx, "e1", "k1", 0, []byte("ad"), 32)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	work := t.TempDir()
	env := childEnv("MINIO_KMS_SERVER="+p.addr, "MINIO_KMS_API_KEY="+rootKey, "KMSLEDGER_CA_FILE="+filepath.Join(dir, "tls", "cert.pem"))
	out := mustCLIIn(t, work, env, "backup")
	name := regexp.MustCompile(`\d{8}_\d{6}_kms\.db\.gzip`).FindString(out)
	if name == "" {
		t.Fatalf("backup printed %q, want a YYYYMMDD_HHMMSS_kms.db.gzip file name", out)
	}
	file := filepath.Join(work, name)
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLIIn(t, work, env, "backup", name); err == nil {
		t.Errorf("backup over an existing file succeeded:\n%s", out)
	}
	if out, err := runCLIIn(t, work, childEnv("MINIO_KMS_SERVER="+p.addr, "KMSLEDGER_CA_FILE="+filepath.Join(dir, "tls", "cert.pem")), "backup", "x.db.gzip"); err == nil {
		t.Errorf("backup without an API key succeeded:\n%s", out)
	}
	if out, err := runCLIIn(t, work, childEnv(), "backup", "--data-dir", dir, "offline.db.gzip"); err == nil || !strings.Contains(out, "in use") {
		t.Errorf("backup --data-dir of a running server's dir: %v\n%s\nwant refused: in use", err, out)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
	mustCLIIn(t, work, childEnv(), "backup", "--data-dir", dir, "offline.db.gzip")
	offline := filepath.Join(t.TempDir(), "offline")
	mustCLIIn(t, work, childEnv("KMSLEDGER_HSM_KEY="+hsmKey), "restore", "offline.db.gzip", "--data-dir", offline)

	target := filepath.Join(t.TempDir(), "restored")
	other, _ := newHSMKey(t)
	if out, err := runCLIIn(t, work, childEnv("KMSLEDGER_HSM_KEY="+other), "restore", name, "--data-dir", target); err == nil || !strings.Contains(out, "cannot open") {
		t.Errorf("restore with another HSM key: %v\n%s\nwant refused: the HSMs cannot open it", err, out)
	}
	b, _ := os.ReadFile(file)
	b[len(b)/3] ^= 4
	bad := filepath.Join(work, "bad.db.gzip")
	os.WriteFile(bad, b, 0o600)
	if out, err := runCLIIn(t, work, childEnv("KMSLEDGER_HSM_KEY="+hsmKey), "restore", bad, "--data-dir", target); err == nil || !strings.Contains(out, "nothing was changed") {
		t.Errorf("restore of a changed file: %v\n%s\nwant refused, nothing changed", err, out)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("refused restores created %s (%v)", target, err)
	}
	out = mustCLIIn(t, work, childEnv("KMSLEDGER_HSM_KEY="+hsmKey), "restore", name, "--data-dir", target)
	if !strings.Contains(out, "restored") || !strings.Contains(out, "verified") || strings.Contains(out, "\r") {
		t.Errorf("restore printed %q; want a summary and no progress bar (not a terminal)", out)
	}

	q := startProcess(t, target, hsmKey)
	rc := q.client(t, target, rootKey)
	defer rc.Close()
	pt, err := rc.Decrypt(ctx, "e1", "k1", 0, dk.Ciphertext, []byte("ad"))
	if err != nil || !bytes.Equal(pt.Plaintext, dk.Plaintext) {
		t.Errorf("Decrypt on the restored server = %v, %v; want the data key", pt, err)
	}
}

// runCLIIn is runCLI in the working directory dir.
func runCLIIn(t *testing.T, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	bin, err := buildBinary()
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env, cmd.Dir = env, dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustCLIIn(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	out, err := runCLIIn(t, dir, env, args...)
	if err != nil {
		t.Fatalf("kmsledger %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}
