package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDevQuickStart is the README's quick start, for real: `server --dev`
// in one process, the CLI in others. The CLI creates an enclave, an admin
// identity, a key (as that admin), generates a data key and decrypts it.
func TestDevQuickStart(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	env := startDevServer(t, bin)
	run := func(apiKey string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(),
			"MINIO_KMS_SERVER="+env["MINIO_KMS_SERVER"], "MINIO_KMS_API_KEY="+apiKey, "KMSLEDGER_CA_FILE="+env["KMSLEDGER_CA_FILE"])
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kmsledger %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	root := env["MINIO_KMS_API_KEY"]

	run(root, "add-enclave", "tenant-1")
	out := run("", "identity")
	var adminKey, adminID string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "API" {
			adminKey = f[2]
		}
		if len(f) == 2 && f[0] == "Identity:" {
			adminID = f[1]
		}
	}
	if adminKey == "" || adminID == "" {
		t.Fatalf("kmsledger identity printed %q", out)
	}
	if got := strings.TrimSpace(run("", "identity", adminKey)); got != adminID {
		t.Fatalf("kmsledger identity KEY = %q, want %q", got, adminID)
	}
	run(root, "add-identity", "-e", "tenant-1", "--admin", adminID)
	run(adminKey, "add", "key", "-e", "tenant-1", "my-key")
	var g struct{ Plaintext, Ciphertext string }
	if err := json.Unmarshal([]byte(run(adminKey, "keygen", "-e", "tenant-1", "my-key", "--json")), &g); err != nil || g.Plaintext == "" {
		t.Fatalf("keygen --json: %v %+v", err, g)
	}
	var d struct{ Plaintext string }
	if err := json.Unmarshal([]byte(run(adminKey, "decrypt", "-e", "tenant-1", "my-key", g.Ciphertext, "--json")), &d); err != nil {
		t.Fatalf("decrypt --json: %v", err)
	}
	if d.Plaintext != g.Plaintext {
		t.Fatalf("decrypt = %q, want %q", d.Plaintext, g.Plaintext)
	}
	if ls := run(adminKey, "ls-key", "-e", "tenant-1"); strings.TrimSpace(ls) != "my-key" {
		t.Fatalf("ls-key = %q, want my-key", ls)
	}
	// The admin of tenant-1 cannot create enclaves.
	cmd := exec.Command(bin, "add-enclave", "nope")
	cmd.Env = append(os.Environ(), "MINIO_KMS_SERVER="+env["MINIO_KMS_SERVER"], "MINIO_KMS_API_KEY="+adminKey, "KMSLEDGER_CA_FILE="+env["KMSLEDGER_CA_FILE"])
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "access denied") {
		t.Fatalf("admin add-enclave: err = %v, out %q; want access denied", err, out)
	}
}

// startDevServer starts `server --dev` on a free port until the test
// ends, and returns the variables of the export block it prints.
func startDevServer(t *testing.T, bin string) map[string]string {
	t.Helper()
	srv := exec.Command(bin, "server", "--dev", "--address", "127.0.0.1:0", "--log-level", "warn")
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Signal(os.Interrupt); srv.Wait() })

	// The reader hands over the variables up to KMSLEDGER_CA_FILE and
	// then only drains stdout (other blocks, e.g. Vault's, follow).
	got := make(chan map[string]string, 1)
	go func() {
		vars := map[string]string{}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if vars == nil || !strings.HasPrefix(sc.Text(), "export ") {
				continue
			}
			k, v, _ := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
			vars[k] = v
			if k == "KMSLEDGER_CA_FILE" {
				got <- vars
				vars = nil
			}
		}
	}()
	var env map[string]string
	select {
	case env = <-got:
	case <-time.After(60 * time.Second):
		t.Fatal("dev server did not print its export block")
	}
	for _, k := range []string{"MINIO_KMS_SERVER", "MINIO_KMS_API_KEY", "MINIO_KMS_ENCLAVE", "MINIO_KMS_SSE_KEY"} {
		if env[k] == "" {
			t.Fatalf("export block lacks %s: %v", k, env)
		}
	}
	return env
}
