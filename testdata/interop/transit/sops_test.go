package transitinterop

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kms"
)

// TestSops: a file encrypted by the real sops with hc_vault_transit
// against kmsledger decrypts, and fails once the key version sops used is
// destroyed (over the kms API: same keys, every protocol). The binary is
// KMSLEDGER_SOPS_BIN (run.sh builds it with .ci/transit-bins.sh).
func TestSops(t *testing.T) {
	bin := os.Getenv("KMSLEDGER_SOPS_BIN")
	if bin == "" {
		t.Fatal("KMSLEDGER_SOPS_BIN is not set: run testdata/interop/run.sh, or build sops with .ci/transit-bins.sh")
	}
	key := harness.UniqueName("sops")
	root := clients(t, rootToken())[0]
	if _, err := root.write("transit/keys/"+key, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	plain := filepath.Join(dir, "secrets.yaml")
	if err := os.WriteFile(plain, []byte("password: correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sops := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "VAULT_TOKEN=" + rootToken(), "VAULT_CACERT=" + env.CAFile}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	uri := env.Endpoint + "/v1/transit/keys/" + key
	enc, err := sops("--encrypt", "--hc-vault-transit", uri, "secrets.yaml")
	if err != nil {
		t.Fatalf("sops --encrypt: %v\n%s", err, enc)
	}
	if strings.Contains(enc, "correct horse") || !strings.Contains(enc, "vault:v1:") {
		t.Fatalf("encrypted file holds the secret or no vault:v1: data key:\n%s", enc)
	}
	if err := os.WriteFile(filepath.Join(dir, "enc.yaml"), []byte(enc), 0o600); err != nil {
		t.Fatal(err)
	}
	dec, err := sops("--decrypt", "enc.yaml")
	if err != nil || !strings.Contains(dec, "password: correct horse battery staple") {
		t.Fatalf("sops --decrypt: %v\n%s", err, dec)
	}
	// Rotate, then destroy version 1 over the kms API.
	if _, err := root.write("transit/keys/"+key+"/rotate", nil); err != nil {
		t.Fatal(err)
	}
	if err := env.Root.DeleteKey(ctx(t), enclave, &kms.DeleteKeyRequest{Name: key, Version: 1}); err != nil {
		t.Fatalf("DeleteKey version 1: %v", err)
	}
	if out, err := sops("--decrypt", "enc.yaml"); err == nil || strings.Contains(out, "correct horse") {
		t.Fatalf("sops --decrypt after version 1 was destroyed: err = %v\n%s", err, out)
	}
}
