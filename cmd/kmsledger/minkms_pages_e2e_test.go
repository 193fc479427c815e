package main

// minkms's documentation pages run as written with `kmsledger` in place of
// `minkms` (issue 10), with real processes: servers and CLI runs are
// children, with real TLS.

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/ledger/porttest"
)

// TestMinKMSEnclavePage is the "Enclave Management" page: add enclave,
// add key and rm enclave with --id, the admin identity made with
// add-identity; an enclave admin cannot delete the enclave.
func TestMinKMSEnclavePage(t *testing.T) {
	hsmKey, root := newHSMKey(t)
	data := filepath.Join(t.TempDir(), "data")
	p, addr := startServer(t, childEnv("MINIO_KMS_HSM_KEY="+hsmKey), data, "--address", "127.0.0.1:0")
	env := childEnv("MINIO_KMS_SERVER="+addr, "KMSLEDGER_CA_FILE="+filepath.Join(data, "tls", "cert.pem"))
	const enclave = "aistor-object-store-primary"

	mustCLI(t, env, "add", "enclave", enclave, "--id", root)
	admin, _ := printedKey(t, mustCLI(t, env, "add-identity", "--enclave", enclave, "--admin", "--id", root))
	mustCLI(t, env, "add", "key", "data-bucket-encryption-key", "--enclave", enclave, "--id", admin)
	if out := mustCLI(t, env, "ls-key", "--enclave", enclave, "--id", admin); strings.TrimSpace(out) != "data-bucket-encryption-key" {
		t.Fatalf("ls-key = %q", out)
	}
	// The page's other spelling.
	mustCLI(t, env, "add-enclave", "aistor-object-store-secondary", "--api-key", root)

	if out, err := runCLI(t, env, "rm", "enclave", enclave, "--id", admin); err == nil || !strings.Contains(out, "access denied") {
		t.Fatalf("rm enclave as the enclave admin: err = %v, output %q; want access denied", err, out)
	}
	if out, err := runCLI(t, env, "add", "key", "k", "--enclave", enclave, "--id", "k1:not-a-key"); err == nil {
		t.Fatalf("--id with a malformed key succeeded: %s", out)
	}
	mustCLI(t, env, "rm", "enclave", enclave, "--id", root)
	if out, err := runCLI(t, env, "ls-key", "--enclave", enclave, "--id", root); err == nil {
		t.Fatalf("ls-key in the deleted enclave succeeded: %s", out)
	}
	if out := p.stop(t); strings.Contains(out, admin) || strings.Contains(out, hsmKey) {
		t.Error("the server log shows the admin API key or the HSM key")
	}
}

// TestMinKMSHSMPage is the "Store HSM on Key Manager" page with two
// servers: on the HSM Key Manager (A), an enclave and its admin made with
// add-identity --admin and the sealing key; on the cluster Key Manager
// (B), running on its local software HSM key (MINIO_KMS_HSM_KEY), the hsm:
// section in minkms's form (two server addresses without scheme, the
// first one down, auth.key = that admin's API key). After a restart the
// REK is sealed under A without any command; after the local key is
// removed and B restarted, every data key made before still decrypts.
func TestMinKMSHSMPage(t *testing.T) {
	// A: the external Key Manager that holds the HSM key.
	aKey, aRoot := newHSMKey(t)
	aData := filepath.Join(t.TempDir(), "a")
	a, aAddr := startServer(t, childEnv("MINIO_KMS_HSM_KEY="+aKey), aData, "--address", "127.0.0.1:0")
	aCA := filepath.Join(aData, "tls", "cert.pem")
	aEnv := childEnv("MINIO_KMS_SERVER=https://" + aAddr)
	mustCLI(t, aEnv, "add-enclave", "-k", "-a", aRoot, "aistor-key-manager")
	admin, _ := printedKey(t, mustCLI(t, aEnv, "add-identity", "-k", "-a", aRoot, "--enclave", "aistor-key-manager", "--admin"))
	mustCLI(t, aEnv, "add-key", "aistor-key-manager-hsm", "-k", "-a", admin, "--enclave", "aistor-key-manager")

	// B: a Key Manager on its local software HSM key, with data keys.
	bKey, bRoot := newHSMKey(t)
	tmp := t.TempDir()
	bData := filepath.Join(tmp, "b")
	bAddr := porttest.Addr(t)
	local := "MINIO_KMS_HSM_KEY=" + bKey
	b, _ := startServer(t, childEnv(local), bData, "--address", bAddr)
	bEnv := childEnv("MINIO_KMS_SERVER="+bAddr, "MINIO_KMS_API_KEY="+bRoot, "KMSLEDGER_CA_FILE="+filepath.Join(bData, "tls", "cert.pem"))
	mustCLI(t, bEnv, "add-enclave", "minio")
	dataKeys := makeDataKeys(t, bEnv, "minio", "sse-1", "sse-2")
	b.stop(t)

	// The page's section, with the two addresses of the HSM Key Manager
	// (the first one is down). B trusts A's certificate through the
	// system roots (SSL_CERT_FILE).
	down := porttest.Addr(t)
	conf := writeFile(t, filepath.Join(tmp, "config.yaml"), `version: v1
address: `+bAddr+`
dir: `+bData+`
hsm:
  minio:
    minkms:
      server:
        - `+down+`
        - `+aAddr+`
      enclave: aistor-key-manager
      key: aistor-key-manager-hsm
      auth:
        key: `+admin+`
`)
	trustA := "SSL_CERT_FILE=" + aCA
	b, _ = startServer(t, childEnv(local, trustA), "--config", conf)
	out := b.stop(t)
	for _, w := range []string{"from=MINIO_KMS_HSM_KEY", "sealed the root encryption key under a configured HSM", "hsm=minio"} {
		if !strings.Contains(out, w) {
			t.Errorf("restart with the hsm: section does not say %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, admin) || strings.Contains(out, bKey) {
		t.Error("B's log shows the API key for A or the local HSM key")
	}

	// The local HSM key removed: A alone opens B's REK.
	b, _ = startServer(t, childEnv(trustA), "--config", conf)
	if out := b.output(); !strings.Contains(out, "root encryption key unsealed") || !strings.Contains(out, "hsm=minio") {
		t.Errorf("restart without the local key did not unseal with minio:\n%s", out)
	}
	for _, d := range dataKeys {
		if got := strings.TrimSpace(mustCLI(t, bEnv, "decrypt", "-e", "minio", d.name, d.ciphertext)); got != d.plaintext {
			t.Errorf("decrypt %s after removing the local HSM key: plaintext differs", d.name)
		}
	}
	b.stop(t)

	// Without A, and without the local key, B does not start.
	a.stop(t)
	out = failServer(t, childEnv(trustA), "--config", conf)
	if !strings.Contains(out, `HSM "minio"`) {
		t.Errorf("start with A down: %q, want a refusal naming HSM minio", out)
	}
}

// cliDataKey is a data key made by keygen, as printed.
type cliDataKey struct{ name, plaintext, ciphertext string }

// makeDataKeys creates each key of names in enclave with the CLI of env
// and returns a data key made under it with keygen.
func makeDataKeys(t *testing.T, env []string, enclave string, names ...string) []cliDataKey {
	t.Helper()
	var keys []cliDataKey
	for _, name := range names {
		mustCLI(t, env, "add-key", "-e", enclave, name)
		out := mustCLI(t, env, "keygen", "-e", enclave, name)
		d := cliDataKey{name, fieldOf(out, "plaintext:"), fieldOf(out, "ciphertext:")}
		if d.plaintext == "" || d.ciphertext == "" {
			t.Fatalf("keygen printed no plaintext and ciphertext")
		}
		keys = append(keys, d)
	}
	return keys
}

// fieldOf returns the value after prefix on the first line that starts
// with it.
func fieldOf(out, prefix string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// printedKey returns the API key and identity printed by add-identity
// without IDENTITY (or by identity without argument).
func printedKey(t *testing.T, out string) (key, id string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "API key:"); ok {
			key = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Identity:"); ok {
			id = strings.TrimSpace(v)
		}
	}
	if !strings.HasPrefix(key, "k1:") || !strings.HasPrefix(id, "h1:") {
		t.Fatalf("no API key and identity in:\n%s", out)
	}
	return key, id
}
