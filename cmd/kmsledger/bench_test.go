package main

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBenchCommand: `bench --baseline` against a server process starts
// its own bare server (bench-bare) and prints both, with the server's CPU
// per operation; without an API key it refuses.
func TestBenchCommand(t *testing.T) {
	dir := t.TempDir()
	hsmKey, rootKey := newHSMKey(t)
	p := startProcess(t, dir, hsmKey)
	c := p.client(t, dir, rootKey)
	if err := c.CreateEnclave(context.Background(), "bench"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	env := childEnv("MINIO_KMS_SERVER="+p.addr, "KMSLEDGER_CA_FILE="+filepath.Join(dir, "tls", "cert.pem"))
	args := []string{"bench", "--baseline", "-d", "200ms", "--rounds", "1", "--ops", "generate,batch", "--batch", "4",
		"--server-pid", strconv.Itoa(p.cmd.Process.Pid)}
	if out, err := runCLI(t, env, args...); err == nil || !strings.Contains(out, "no API key") {
		t.Errorf("bench without an API key: %v\n%s", err, out)
	}
	out := mustCLI(t, append(env, "MINIO_KMS_API_KEY="+rootKey), args...)
	for _, want := range []string{"kmsledger, bare-mtls", "GenerateKey×4", "server CPU", "p99.9"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
}
