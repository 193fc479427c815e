package clientcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/api/wire"
)

// TestStatKeyUsage runs stat-key against a real node: the text and --json
// output show per-version use counts that go up with use, the ciphertext
// format of each version, and say the counts are this node's since start.
func TestStatKeyUsage(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: n.Certificate.Leaf.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	root := n.Client(t, "")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(root.CreateEnclave(ctx, "t"))
	must(root.CreateKey(ctx, "t", "k", "ChaCha20", false))
	statKey := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		app := &cli.App{Name: "kmsledger", Commands: Commands(nil), Writer: &out, ErrWriter: io.Discard}
		argv := append([]string{"kmsledger", "stat-key", "-a", n.RootKey, "--server", n.Addr, "--ca", ca, "-e", "t"}, args...)
		must(app.RunContext(ctx, argv))
		return out.String()
	}
	jsonUsage := func() wire.VersionInfo {
		t.Helper()
		var k wire.KeyInfo
		if err := json.Unmarshal([]byte(statKey("--json", "k")), &k); err != nil || len(k.Versions) != 1 {
			t.Fatalf("stat-key --json: %v, %+v", err, k)
		}
		return k.Versions[0]
	}
	if v := jsonUsage(); v.Usage != (wire.VersionUsage{}) || v.CiphertextFormat != 2 || v.CiphertextAEAD != "XChaCha20-Poly1305" {
		t.Fatalf("unused version: %+v, want zero usage, format 2 XChaCha20-Poly1305", v)
	}
	for i := range 3 {
		g, err := root.GenerateKey(ctx, "t", "k", 0, nil, 0)
		must(err)
		for range i {
			_, err := root.Decrypt(ctx, "t", "k", 0, g.Ciphertext, nil)
			must(err)
		}
	}
	if got, want := jsonUsage().Usage, (wire.VersionUsage{Encryptions: 3, Decryptions: 3}); got != want {
		t.Fatalf("stat-key --json usage = %+v, want %+v", got, want)
	}
	out := statKey("k")
	var row []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "1" {
			row = f
		}
	}
	// VERSION TYPE STATE CREATED LAST-USED ENCRYPTED DECRYPTED OLD-FORMAT FORMAT(2 fields) CREATED-BY
	if len(row) != 11 || row[5] != "3" || row[6] != "3" || row[7] != "0" || row[8] != "v02" || row[9] != "XChaCha20-Poly1305" {
		t.Fatalf("stat-key version row = %q in\n%s\nwant 3 encrypted, 3 decrypted, 0 old-format, v02 XChaCha20-Poly1305", row, out)
	}
	if !strings.Contains(out, "ENCRYPTED") || !strings.Contains(out, "on the answering node since it started") {
		t.Errorf("stat-key output lacks the usage header or the per-node note:\n%s", out)
	}
}
