package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/cmd/config"
)

func TestTransitOf(t *testing.T) {
	conf := config.Transit{Mounts: map[string]string{"sops/team": "team", "transit": "minio"}}
	tr, err := transitOf(conf, "other", false)
	if err != nil || tr.mounts["transit"] != "other" || tr.mounts["sops/team"] != "team" || len(conf.Mounts) != 2 || conf.Mounts["transit"] != "minio" {
		t.Fatalf("transitOf = %v, %v; want the flag to set mount transit, the file's mounts kept and unchanged", tr.mounts, err)
	}
	if tr, _ := transitOf(config.Transit{}, "", false); len(tr.mounts) != 0 {
		t.Errorf("no configuration: mounts %v, want none", tr.mounts)
	}
	if tr, _ := transitOf(config.Transit{}, "", true); tr.mounts["transit"] != devEnclave {
		t.Errorf("--dev: mounts %v, want transit -> %s", tr.mounts, devEnclave)
	}
	for _, m := range []string{"kms", "sys/x", "a//b", "../x", "a.b", ""} {
		if _, err := transitOf(config.Transit{Mounts: map[string]string{m: "e"}}, "", false); err == nil {
			t.Errorf("mount %q accepted", m)
		}
	}
	if _, err := transitOf(config.Transit{Mounts: map[string]string{"t": ""}}, "", false); err == nil {
		t.Error("mount without enclave accepted")
	}
	c, err := config.Read(strings.NewReader("version: v1\ntransit:\n  mounts:\n    transit: minio\n  disable_upsert: true\n"), func(string) (string, bool) { return "", false })
	if err != nil || c.Transit.Mounts["transit"] != "minio" || !c.Transit.DisableUpsert {
		t.Fatalf("config transit section = %+v, %v", c.Transit, err)
	}
}

// TestDevTransitQuickStart: `server --dev` prints a VAULT_ADDR,
// VAULT_TOKEN, VAULT_CACERT block that a Transit client uses as is.
func TestDevTransitQuickStart(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
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
	env := map[string]string{}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok && strings.HasPrefix(sc.Text(), "export ") {
				env[k] = v
				if k == "VAULT_CACERT" {
					close(ready)
				}
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatal("dev server did not print the VAULT_ block")
	}
	pem, err := os.ReadFile(env["VAULT_CACERT"])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	call := func(path string, body map[string]any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("PUT", env["VAULT_ADDR"]+"/v1/"+path, bytes.NewReader(b))
		req.Header.Set("X-Vault-Token", env["VAULT_TOKEN"])
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ Data map[string]any }
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("PUT %s: %d, %v", path, resp.StatusCode, err)
		}
		return out.Data
	}
	pt := base64.StdEncoding.EncodeToString([]byte("quick start"))
	ct := call("transit/encrypt/dev-key", map[string]any{"plaintext": pt})["ciphertext"]
	if got := call("transit/decrypt/dev-key", map[string]any{"ciphertext": ct})["plaintext"]; got != pt {
		t.Fatalf("decrypt = %v, want %s", got, pt)
	}
}
