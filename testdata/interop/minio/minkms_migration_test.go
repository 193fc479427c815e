package minio

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMinKMSMigrationPage runs the AIStor Key Manager page "Migrate
// Encryption Keys" (from KES) as written, with `kmsledger` in place of
// `minkms`: the SysAdmin key from `identity --config`, connectivity with
// `kes key ls` and `kmsledger env`, an enclave and its admin made with
// `add-identity --admin` (the printed API key is the one used next), the
// real `kes migrate --from CONFIG --server --enclave --api-key` of the
// pinned KES, and `kes key ls` against `kmsledger ls-key`. A data key
// the real KES made before the migration decrypts through kmsledger.
func TestMinKMSMigrationPage(t *testing.T) {
	start := time.Now()
	kesBin := requireBinary(t, "KMSLEDGER_KES_BIN")
	h := newE2E(t, func(figures) string {
		return fmt.Sprintf("figures: migration page run in %v", time.Since(start).Round(time.Millisecond))
	})
	const enclave = "aistor-object-store-primary"
	keys := []string{"minio-default-key", "bucket-a-key", "bucket-b-key"}
	h.newLedger(t, "")
	k := h.ledger
	kesKey := h.newKESAPIKey(t)
	kesSrv := h.newKESServer(t, kesBin, kesKey.id)
	kesCLI := func(t *testing.T, args ...string) string {
		t.Helper()
		env := append(baseEnv(), kesSrv.env...)
		env = append(env, "KES_SERVER="+kesSrv.endpoint(), "KES_API_KEY="+kesKey.key.String())
		out, err := h.run(t, env, nil, kesBin, args...)
		if err != nil {
			t.Fatalf("kes %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	// The page's client environment: server, CA, and the API key of the
	// step (root, then the enclave admin).
	kmsCLI := func(t *testing.T, apiKey string, args ...string) (string, error) {
		t.Helper()
		env := append(baseEnv(), "MINIO_KMS_SERVER=https://"+k.addr, "KMSLEDGER_CA_FILE="+k.ca)
		if apiKey != "" {
			env = append(env, "MINIO_KMS_API_KEY="+apiKey)
		}
		return h.run(t, env, nil, k.bin, args...)
	}
	var (
		root, admin string
		dek         struct{ plaintext, ciphertext string }
	)
	runSteps(t, []step{
		{"a real KES holds keys and made a data key", func(t *testing.T) {
			h.startKES(t, kesSrv, kesKey)
			for _, name := range keys {
				kesCLI(t, "key", "create", "-k", name)
			}
			out := kesCLI(t, "key", "dek", "-k", keys[1])
			// Not a terminal: KES prints JSON (a terminal gets a table).
			var d struct{ Plaintext, Ciphertext string }
			if err := json.Unmarshal([]byte(out), &d); err != nil || d.Plaintext == "" || d.Ciphertext == "" {
				t.Fatalf("kes key dek: %v; output not JSON with plaintext and ciphertext", err)
			}
			dek.plaintext, dek.ciphertext = d.Plaintext, d.Ciphertext
			h.red.Add(dek.plaintext)
		}},
		{"kmsledger identity --config gives the SysAdmin key", func(t *testing.T) {
			conf := filepath.Join(h.dir, "config.yaml")
			must(t, os.WriteFile(conf, []byte("version: v1\ndir: "+k.dir+"\n"), 0o600))
			out, err := h.run(t, append(baseEnv(), "MINIO_KMS_HSM_KEY="+k.hsmKey), nil, k.bin, "identity", "--config", conf)
			if err != nil {
				t.Fatal(err)
			}
			if root = field(out, "Root API key:"); root != k.rootKey {
				t.Fatalf("identity --config printed another root API key than the server's")
			}
		}},
		{"kes key ls and kmsledger env answer", func(t *testing.T) {
			if got := kesKeyNames(t, kesCLI(t, "key", "ls", "-k")); len(got) != len(keys) {
				t.Fatalf("kes key ls = %v, want %d keys", got, len(keys))
			}
			out, err := kmsCLI(t, root, "env")
			if err != nil || !strings.Contains(out, k.addr+": online") || strings.Contains(out, root) {
				t.Fatalf("kmsledger env: %v\n%s", err, h.red.Redact(out))
			}
			t.Logf("kmsledger env:\n%s", h.red.Redact(out))
		}},
		{"enclave and admin identity", func(t *testing.T) {
			if _, err := kmsCLI(t, root, "add-enclave", enclave); err != nil {
				t.Fatal(err)
			}
			out, err := kmsCLI(t, root, "add-identity", "--enclave", enclave, "--admin")
			if err != nil {
				t.Fatal(err)
			}
			admin = field(out, "API key:")
			if !strings.HasPrefix(admin, "k1:") || field(out, "Identity:") == "" {
				t.Fatalf("add-identity --admin printed no API key and identity")
			}
			h.red.Add(admin)
		}},
		{"kes migrate into kmsledger", func(t *testing.T) {
			// kes migrate trusts kmsledger's certificate through the
			// system roots (SSL_CERT_FILE), not -k.
			env := append(append(baseEnv(), kesSrv.env...), "SSL_CERT_FILE="+k.ca)
			migStart := time.Now()
			out, err := h.run(t, env, nil, kesBin, "migrate", "--from", kesSrv.config,
				"--server", k.addr, "--enclave", enclave, "--api-key", admin)
			if err != nil {
				t.Fatalf("kes migrate: %v", err)
			}
			t.Logf("kes migrate (%v): %s", time.Since(migStart).Round(time.Millisecond), h.red.Redact(strings.TrimSpace(out)))
		}},
		{"kes key ls and kmsledger ls-key agree", func(t *testing.T) {
			kesNames := kesKeyNames(t, kesCLI(t, "key", "ls", "-k"))
			out, err := kmsCLI(t, admin, "ls-key", "--enclave", enclave)
			if err != nil {
				t.Fatal(err)
			}
			ledgerNames := strings.Fields(out)
			slices.Sort(kesNames)
			slices.Sort(ledgerNames)
			if len(kesNames) != len(ledgerNames) || !slices.Equal(kesNames, ledgerNames) {
				t.Fatalf("kes key ls = %v, kmsledger ls-key = %v", kesNames, ledgerNames)
			}
		}},
		{"the KES-made data key decrypts through kmsledger", func(t *testing.T) {
			out, err := kmsCLI(t, admin, "decrypt", "--enclave", enclave, keys[1], dek.ciphertext)
			if err != nil || strings.TrimSpace(out) != dek.plaintext {
				t.Fatalf("kmsledger decrypt of the KES data key: %v; plaintext equal: %v", err, strings.TrimSpace(out) == dek.plaintext)
			}
			// The admin of this enclave cannot act as SysAdmin.
			if _, err := kmsCLI(t, admin, "add-enclave", "not-allowed"); err == nil || !strings.Contains(err.Error(), "access denied") {
				t.Fatalf("enclave admin add-enclave: err = %v, want access denied", err)
			}
			// Without an API key nothing but the version is served.
			if _, err := kmsCLI(t, "", "ls-key", "--enclave", enclave); err == nil {
				t.Fatal("ls-key without an API key succeeded")
			}
		}},
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// kesKeyNames returns the key names `kes key ls` prints when its
// output is not a terminal: a "Key" header, then one name a line.
func kesKeyNames(t *testing.T, out string) []string {
	t.Helper()
	lines := strings.Fields(out)
	if len(lines) == 0 || lines[0] != "Key" {
		t.Fatalf("kes key ls printed no Key header:\n%s", out)
	}
	return lines[1:]
}
