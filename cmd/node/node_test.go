package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

func newSoftKey(t *testing.T) string {
	t.Helper()
	k, err := softkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func soft(name, key string) config.HSM { return config.HSM{Name: name, Soft: &config.Soft{Key: key}} }

// open opens a node on dir with cfg's HSMs and a self-signed certificate
// in dir, closing it when the test ends.
func open(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	n, err := node.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open err = %v, want nil", err)
	}
	t.Cleanup(func() { n.Close() })
	waitReconciled(t, n)
	return n
}

// waitReconciled waits for n's first sealed-material pass, which runs
// beside serving and reads the handler's clock that tests set.
func waitReconciled(t *testing.T, n *node.Node) {
	t.Helper()
	select {
	case <-n.Reconciled():
	case <-time.After(time.Minute):
		t.Fatal("the node's first reconcile pass did not end")
	}
}

// serve serves n on a loopback port and returns a root client.
func serve(t *testing.T, n *node.Node) (*client.Client, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Serve(context.Background(), ln) }()
	roots := x509.NewCertPool()
	leaf, err := x509.ParseCertificate(n.Certificate.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots.AddCert(leaf)
	c, err := client.New(client.Config{Endpoints: []string{ln.Addr().String()}, APIKey: n.RootKey, RootCAs: roots, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, done
}

// TestOpenServeClose: a new ledger is initialised with the root API key
// derived from the software HSM key, served, and closed in order (Serve
// returns, a second Close is a no-op, Serve on a closed node refuses);
// opened again, the same root is recovered and nothing is created.
func TestOpenServeClose(t *testing.T) {
	dir, key := t.TempDir(), newSoftKey(t)
	hk, _ := softkey.Parse(key)
	wantKey, wantID, err := node.DeriveRootAPIKey(hk)
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.Config{Dir: dir, HSMs: []config.HSM{soft("soft", key)}, Addr: "127.0.0.1:0", Version: "v-test"}
	n := open(t, cfg)
	if !n.Created || n.RootKey != wantKey || n.RootID != wantID || n.OpenedBy != "soft" {
		t.Fatalf("Open = created %v, root %s, opened by %q; want created, %s, soft", n.Created, n.RootID, n.OpenedBy, wantID)
	}
	if want := filepath.Join(dir, "tls", "cert.pem"); n.CAFile != want {
		t.Errorf("CAFile = %q, want %q", n.CAFile, want)
	}
	c, done := serve(t, n)
	v, err := c.Version(t.Context())
	if err != nil || v.Version != "v-test" {
		t.Fatalf("Version = %+v, %v; want v-test", v, err)
	}
	if err := c.CreateEnclave(t.Context(), "e"); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("Close err = %v, want nil", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after Close = %v, want nil", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close err = %v, want nil", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := n.Serve(t.Context(), ln); !errors.Is(err, node.ErrClosed) {
		t.Fatalf("Serve on a closed node err = %v, want ErrClosed", err)
	}

	again := open(t, cfg)
	if again.Created || again.RootKey != wantKey || again.RootID != wantID {
		t.Fatalf("reopened: created %v, root %s; want not created, %s", again.Created, again.RootID, wantID)
	}
	var ok bool
	again.Proj.View(func(s *projections.State) { _, ok = s.Enclaves["e"] })
	if !ok {
		t.Fatal("enclave e is gone after a restart")
	}
}

// TestOpenRefusals: a node that cannot start says why and leaves the
// data dir as it was: no HSM opens; a configured HSM is missing when a
// new ledger would be made; an HSM the ledger is not sealed under; a bad
// client CA file, failing after the ledger was opened, releases it (the
// next Open succeeds).
func TestOpenRefusals(t *testing.T) {
	key := newSoftKey(t)
	t.Run("NoHSM", func(t *testing.T) {
		dir := t.TempDir()
		_, err := node.Open(t.Context(), node.Config{Dir: dir, HSMs: []config.HSM{soft("bad", "hsm:aes256:nope")}})
		if err == nil || !strings.Contains(err.Error(), "no HSM could be opened") || !strings.Contains(err.Error(), `"bad"`) {
			t.Fatalf("Open err = %v, want one naming the HSM", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "jetstream")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a ledger was made (stat err = %v)", err)
		}
	})
	t.Run("MissingHSMOnANewLedger", func(t *testing.T) {
		dir := t.TempDir()
		_, err := node.Open(t.Context(), node.Config{Dir: dir, HSMs: []config.HSM{soft("good", key), soft("gone", "hsm:aes256:nope")}})
		if err == nil || !strings.Contains(err.Error(), "not initialising the ledger") {
			t.Fatalf("Open err = %v, want a refusal to initialise", err)
		}
		n := open(t, node.Config{Dir: dir, HSMs: []config.HSM{soft("good", key)}})
		if !n.Created {
			t.Fatal("the refused Open wrote the ledger's initialisation")
		}
	})
	t.Run("WrongHSM", func(t *testing.T) {
		dir := t.TempDir()
		n := open(t, node.Config{Dir: dir, HSMs: []config.HSM{soft("a", key)}})
		n.Close()
		_, err := node.Open(t.Context(), node.Config{Dir: dir, HSMs: []config.HSM{soft("b", newSoftKey(t))}})
		if !errors.Is(err, commands.ErrNoHSM) || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("Open with another HSM key err = %v, want ErrNoHSM", err)
		}
	})
	t.Run("BadClientCA", func(t *testing.T) {
		dir := t.TempDir()
		bad := filepath.Join(dir, "ca.pem")
		os.WriteFile(bad, []byte("not PEM"), 0o600)
		_, err := node.Open(t.Context(), node.Config{Dir: dir, HSMs: []config.HSM{soft("a", key)}, ClientCAFile: bad})
		if err == nil || !strings.Contains(err.Error(), "tls.client_ca") {
			t.Fatalf("Open err = %v, want one naming tls.client_ca", err)
		}
		open(t, node.Config{Dir: dir, HSMs: []config.HSM{soft("a", key)}})
	})
	t.Run("NegativeAudit", func(t *testing.T) {
		_, err := node.Open(t.Context(), node.Config{Dir: t.TempDir(), HSMs: []config.HSM{soft("a", key)},
			Audit: &ledger.AuditConfig{Batch: -1}, Checkpoints: &ledger.CheckpointConfig{}})
		if err == nil || !strings.Contains(err.Error(), "must not be negative") {
			t.Fatalf("Open err = %v, want a refusal of negative settings", err)
		}
	})
}

// TestOpenSealsConfiguredHSMs: an HSM added to the configuration of an
// initialised ledger gets a sealing at the next Open, and then opens the
// node alone.
func TestOpenSealsConfiguredHSMs(t *testing.T) {
	dir, first, second := t.TempDir(), newSoftKey(t), newSoftKey(t)
	n := open(t, node.Config{Dir: dir, HSMs: []config.HSM{soft("first", first)}})
	n.Close()
	n = open(t, node.Config{Dir: dir, HSMs: []config.HSM{soft("first", first), soft("second", second)}})
	n.Close()
	n = open(t, node.Config{Dir: dir, HSMs: []config.HSM{soft("second", second)}})
	if n.OpenedBy != "second" || n.Created {
		t.Fatalf("Open with the second HSM alone: opened by %q, created %v", n.OpenedBy, n.Created)
	}
}

// TestOpenCarriesOutDueDeletions: a key whose deletion deadline passed
// while the node was stopped is destroyed by Open, before serving.
func TestOpenCarriesOutDueDeletions(t *testing.T) {
	dir, key := t.TempDir(), newSoftKey(t)
	cfg := node.Config{Dir: dir, HSMs: []config.HSM{soft("soft", key)}, SchedulerInterval: -1}
	n := open(t, cfg)
	ctx := t.Context()
	for _, c := range []commands.Command{commands.CreateEnclave{Name: "e"}, commands.CreateKey{Enclave: "e", Name: "k", Type: "AES256"}} {
		if _, err := n.Handler.Execute(ctx, n.RootID, "", c); err != nil {
			t.Fatal(err)
		}
	}
	n.Handler.Now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	if _, err := n.Handler.Execute(ctx, n.RootID, "", commands.ScheduleKeyDeletion{Enclave: "e", Name: "k", Deadline: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	n.Close()
	n = open(t, cfg)
	var exists bool
	n.Proj.View(func(s *projections.State) { _, exists = s.Enclaves["e"].Keys["k"] })
	if exists {
		t.Fatal("key k, due for deletion, still exists after Open")
	}
}

// TestCloseStoresAuditAndCheckpoint: Close stores every accepted audit
// record and then signs a checkpoint that covers them.
func TestCloseStoresAuditAndCheckpoint(t *testing.T) {
	dir := t.TempDir()
	n := open(t, node.Config{Dir: dir, HSMs: []config.HSM{soft("soft", newSoftKey(t))},
		Audit: &ledger.AuditConfig{Interval: time.Hour, Batch: 64}, Checkpoints: &ledger.CheckpointConfig{Events: 1 << 20, Interval: time.Hour}})
	if n.Auditor == nil || n.SigningKey == nil {
		t.Fatalf("Auditor %v, signing key %v; want both", n.Auditor, n.SigningKey)
	}
	c, _ := serve(t, n)
	for range 3 {
		if _, err := c.Version(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatalf("Close err = %v", err)
	}
	ro, err := ledger.Open(t.Context(), ledger.Config{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	records := 0
	if err := ro.AuditRecords(t.Context(), 1, 0, func(uint64, ledger.AuditRecord) error { records++; return nil }); err != nil {
		t.Fatal(err)
	}
	if records < 3 {
		t.Fatalf("%d audit records stored, want at least 3", records)
	}
	rep, err := ro.Verify(t.Context(), ledger.VerifyOptions{Keys: map[string]ed25519.PublicKey{ledger.KeyID(n.SigningKey): n.SigningKey}})
	if err != nil || rep.Checkpoints == 0 || rep.Ledger.SignedThrough != rep.Ledger.Last {
		t.Fatalf("Verify = %+v, %v; want the last checkpoint to cover everything", rep, err)
	}
}
