package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/hsm/softkey"
)

// TestServerJSONLogAndRestart: `server --log-format json --log-level
// debug` writes one JSON line per request (without the data key it
// served), and POST /v1/debug/restart?self brings the same server back on
// the same data: the key made before the restart still decrypts.
func TestServerJSONLogAndRestart(t *testing.T) {
	ctx := context.Background()
	hsmKey, err := softkey.Generate(rand.Reader)
	must(t, err)
	dir := filepath.Join(t.TempDir(), "data")
	p, addr := startServer(t, childEnv("KMSLEDGER_HSM_KEY="+hsmKey), dir, "--address", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug")
	rootKey, _ := p.firstRoot(t)
	c := newKMSClient(t, addr, filepath.Join(dir, "tls", "cert.pem"), rootKey)
	must(t, c.CreateEnclave(ctx, "app"))
	must(t, c.CreateKey(ctx, "app", "k", "", false))
	gen, err := c.GenerateKey(ctx, "app", "k", 0, []byte("{}"), 32)
	must(t, err)

	var line map[string]any
	for deadline := time.Now().Add(20 * time.Second); line == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no JSON request line for KEY:GENERATE:\n%s", p.output())
		}
		for _, l := range strings.Split(p.output(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["command"] == "KEY:GENERATE" {
				line = m
			}
		}
	}
	if line["level"] != "DEBUG" || line["status"] != float64(200) || line["path"] != "/v1/kms/app" || line["identity"] == "" {
		t.Fatalf("request line = %v, want DEBUG, 200, path and identity", line)
	}
	if out := p.output(); strings.Contains(out, base64.StdEncoding.EncodeToString(gen.Plaintext)) || strings.Contains(out, string(gen.Plaintext)) {
		t.Fatal("the server's log holds the data key it served")
	}

	must(t, c.Restart(ctx, true))
	var addr2 string
	select {
	case addr2 = <-p.serving:
	case <-p.done:
		t.Fatalf("server exited instead of restarting:\n%s", p.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not come back:\n%s", p.output())
	}
	c2 := newKMSClient(t, addr2, filepath.Join(dir, "tls", "cert.pem"), rootKey)
	pt, err := c2.Decrypt(ctx, "app", "k", 0, gen.Ciphertext, []byte("{}"))
	must(t, err)
	if string(pt.Plaintext) != string(gen.Plaintext) {
		t.Fatal("after the restart the key decrypts to something else")
	}
}
