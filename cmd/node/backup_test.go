package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// serveAt serves n on a loopback port and returns a root client and the
// address.
func serveAt(t *testing.T, n *node.Node) (*client.Client, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return rootClient(t, n, ln.Addr().String(), n.RootKey), ln.Addr().String()
}

func rootClient(t *testing.T, n *node.Node, addr, key string) *client.Client {
	t.Helper()
	roots := x509.NewCertPool()
	leaf, err := x509.ParseCertificate(n.Certificate.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots.AddCert(leaf)
	c, err := client.New(client.Config{Endpoints: []string{addr}, APIKey: key, RootCAs: roots, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// backupCfg is a node configuration with checkpoints and audit.
func backupCfg(dir string, hsms ...config.HSM) node.Config {
	return node.Config{Dir: dir, HSMs: hsms, Addr: "127.0.0.1:0", SchedulerInterval: -1,
		Checkpoints: &ledger.CheckpointConfig{}, Audit: &ledger.AuditConfig{Sync: true}}
}

// sealed is a data key and its ciphertext under a key.
type sealed struct {
	key        string
	plain, ctx []byte
	ciphertext []byte
}

// populate creates an enclave with two keys (one rotated), an identity
// and a policy, and a data key under each key version.
func populate(t *testing.T, c *client.Client) []sealed {
	t.Helper()
	ctx := t.Context()
	if err := c.CreateEnclave(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	var out []sealed
	for _, k := range []string{"k1", "k2"} {
		if err := c.CreateKey(ctx, "e", k, "", false); err != nil {
			t.Fatal(err)
		}
		out = append(out, generate(t, c, k))
	}
	if err := c.CreateKey(ctx, "e", "k1", "", true); err != nil {
		t.Fatal(err)
	}
	return append(out, generate(t, c, "k1"))
}

func generate(t *testing.T, c *client.Client, key string) sealed {
	t.Helper()
	ad := []byte(`{"bucket":"b"}`)
	dk, err := c.GenerateKey(t.Context(), "e", key, 0, ad, 32)
	if err != nil {
		t.Fatalf("GenerateKey(%s) err = %v", key, err)
	}
	return sealed{key: key, plain: dk.Plaintext, ctx: ad, ciphertext: dk.Ciphertext}
}

// checkDecrypts decrypts every data key through c.
func checkDecrypts(t *testing.T, c *client.Client, keys []sealed) {
	t.Helper()
	for _, s := range keys {
		pt, err := c.Decrypt(t.Context(), "e", s.key, 0, s.ciphertext, s.ctx)
		if err != nil || !bytes.Equal(pt.Plaintext, s.plain) {
			t.Errorf("Decrypt(%s) = %+v, %v; want the data key generated before the backup", s.key, pt, err)
		}
	}
}

// stateOf returns the projected state of n as JSON (exported fields),
// without what only counts messages (the sequence, and the subjects'
// last sequences: checkpoints after the backup move those).
func stateOf(t *testing.T, n *node.Node) string {
	t.Helper()
	var b []byte
	var err error
	n.Proj.View(func(st *projections.State) {
		b, err = json.Marshal(struct {
			Enclaves                          map[string]*projections.Enclave
			HSMs                              map[string]*projections.HSMSealing
			Initialized                       bool
			SealedREK, SealedRootKey          []byte
			HSMKeyID, RootIdentity, DefaultTy string
		}{st.Enclaves, st.HSMs, st.Initialized, st.SealedREK, st.SealedRootKey, st.HSMKeyID, st.RootIdentity, st.DefaultType})
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// download backs n up through GET /v1/db into a file and returns its name.
func download(t *testing.T, c *client.Client) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), time.Now().UTC().Format("20060102_150405_kms.db.gzip"))
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := c.DownloadBackup(t.Context(), f); err != nil {
		t.Fatalf("DownloadBackup err = %v", err)
	}
	return file
}

// TestBackupRestoreIdenticalState: backup through GET /v1/db, wipe,
// restore into a fresh data dir with the same HSM: the projected state is
// the same and every key decrypts what it encrypted before.
func TestBackupRestoreIdenticalState(t *testing.T) {
	key := newSoftKey(t)
	srcDir := t.TempDir()
	src := open(t, backupCfg(srcDir, soft("soft", key)))
	c, _ := serveAt(t, src)
	keys := populate(t, c)
	file := download(t, c)
	before := stateOf(t, src)
	src.Close()
	if err := os.RemoveAll(srcDir); err != nil { // wipe
		t.Fatal(err)
	}

	res, err := node.RestoreOffline(t.Context(), node.RestoreConfig{File: file, Dir: srcDir, HSMs: []config.HSM{soft("soft", key)}})
	if err != nil {
		t.Fatalf("RestoreOffline err = %v, want nil", err)
	}
	if res.RestFile != "" || res.MovedAside != "" || res.Verify == nil || res.Verify.Checkpoints == 0 {
		t.Errorf("RestoreOffline = %+v, want a verified restore with nothing set or moved aside", res)
	}
	dst := open(t, backupCfg(srcDir, soft("soft", key)))
	after := stateOf(t, dst)
	if before != after || !strings.Contains(before, `"k1"`) {
		t.Errorf("restored state differs:\nbefore %s\nafter  %s", before, after)
	}
	dc, _ := serveAt(t, dst)
	checkDecrypts(t, dc, keys)
}

// snapshotDir returns every file of dir with its content.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			out[p] = string(b)
		}
		return nil
	})
	return out
}

// siblings lists the entries next to dir whose names start with its own.
func siblings(t *testing.T, dir string) []string {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Dir(dir))
	var out []string
	for _, e := range entries {
		if strings.Contains(e.Name(), filepath.Base(dir)) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestRestoreRefusedChangesNothing: a backup with one byte changed (at
// several positions), an HSM that cannot open it, and a data dir in use
// are refused, and the data dir is left exactly as it was.
func TestRestoreRefusedChangesNothing(t *testing.T) {
	key := newSoftKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	n := open(t, backupCfg(dir, soft("soft", key)))
	c, _ := serveAt(t, n)
	populate(t, c)
	file := download(t, c)
	n.Close()
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want, wantSiblings := snapshotDir(t, dir), siblings(t, dir)
	refused := func(name string, cfg node.RestoreConfig) {
		t.Helper()
		_, err := node.RestoreOffline(t.Context(), cfg)
		if !errors.Is(err, node.ErrRestore) {
			t.Errorf("%s: RestoreOffline err = %v, want ErrRestore", name, err)
		}
		if got := snapshotDir(t, dir); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the data dir changed", name)
		}
		if got := siblings(t, dir); !slices.Equal(got, wantSiblings) {
			t.Errorf("%s: left %v next to the data dir, want %v", name, got, wantSiblings)
		}
	}
	for _, at := range []int{0, 5, 9, 100, len(good) / 2, len(good) - 100, len(good) - 1} {
		bad := bytes.Clone(good)
		bad[at] ^= 0x20
		f := filepath.Join(t.TempDir(), "bad.db.gzip")
		os.WriteFile(f, bad, 0o600)
		refused(fmt.Sprintf("byte %d of %d changed", at, len(good)), node.RestoreConfig{File: f, Dir: dir, HSMs: []config.HSM{soft("soft", key)}, Force: true})
	}
	refused("another HSM", node.RestoreConfig{File: file, Dir: dir, HSMs: []config.HSM{soft("other", newSoftKey(t))}, Force: true})
	refused("no HSM", node.RestoreConfig{File: file, Dir: dir, Force: true})
	refused("data dir holds data, no --force", node.RestoreConfig{File: file, Dir: dir, HSMs: []config.HSM{soft("soft", key)}})
	refused("not a backup", node.RestoreConfig{File: filepath.Join(dir, "last-checkpoint.json"), Dir: dir, HSMs: []config.HSM{soft("soft", key)}, Force: true})

	running := open(t, backupCfg(dir, soft("soft", key)))
	_, err = node.RestoreOffline(t.Context(), node.RestoreConfig{File: file, Dir: dir, HSMs: []config.HSM{soft("soft", key)}, Force: true})
	if !errors.Is(err, ledger.ErrLocked) {
		t.Errorf("restore into a running node's dir: err = %v, want ErrLocked", err)
	}
	running.Close()

	// With --force the old data dir is moved aside, not deleted.
	res, err := node.RestoreOffline(t.Context(), node.RestoreConfig{File: file, Dir: dir, HSMs: []config.HSM{soft("soft", key)}, Force: true})
	if err != nil {
		t.Fatalf("RestoreOffline(--force) err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(res.MovedAside, "jetstream")); err != nil {
		t.Errorf("the old data dir was not kept at %q: %v", res.MovedAside, err)
	}
}

// TestRestorePointInTime: a restore to a moment between two key
// creations (by sequence, and by time) has the first key and not the
// second; the events after it are in the rest file.
func TestRestorePointInTime(t *testing.T) {
	key := newSoftKey(t)
	n := open(t, backupCfg(t.TempDir(), soft("soft", key)))
	c, _ := serveAt(t, n)
	ctx := t.Context()
	if err := c.CreateEnclave(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateKey(ctx, "e", "first", "", false); err != nil {
		t.Fatal(err)
	}
	first := generate(t, c, "first")
	seq, _, _ := n.Store.ChainHead("LEDGER")
	between := time.Now()
	if err := c.CreateKey(ctx, "e", "second", "", false); err != nil {
		t.Fatal(err)
	}
	file := download(t, c)
	n.Close()

	for name, cfg := range map[string]node.RestoreConfig{
		"until-seq": {UntilSeq: seq},
		"until":     {Until: between},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.File, cfg.Dir, cfg.HSMs = file, filepath.Join(t.TempDir(), "data"), []config.HSM{soft("soft", key)}
			cfg.RestFile = filepath.Join(t.TempDir(), "rest.db.gzip")
			res, err := node.RestoreOffline(ctx, cfg)
			if err != nil {
				t.Fatalf("RestoreOffline err = %v", err)
			}
			if res.RestFile != cfg.RestFile || res.Report.Rest.Ledger == 0 {
				t.Errorf("RestoreOffline = %+v, want the later events in %s", res, cfg.RestFile)
			}
			rest := readBackup(t, res.RestFile, ledger.RestFormat)
			var restKeys []string
			rest.Scan(func(m *ledger.BackupMsg) error {
				if m.Type == ledger.TypeKeyCreated {
					restKeys = append(restKeys, m.Subject)
				}
				return nil
			})
			if !slices.Equal(restKeys, []string{ledger.KeySubject("e", "second")}) {
				t.Errorf("rest file holds key creations %v, want the second key's", restKeys)
			}
			r := open(t, backupCfg(cfg.Dir, soft("soft", key)))
			r.Proj.View(func(s *projections.State) {
				e := s.Enclaves["e"]
				if e == nil || e.Keys["first"] == nil || e.Keys["second"] != nil {
					t.Errorf("restored enclave e = %+v, want key first and not second", e)
				}
			})
			rc, _ := serveAt(t, r)
			checkDecrypts(t, rc, []sealed{first})
		})
	}
}

func readBackup(t *testing.T, file, format string) *ledger.BackupFile {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	b, err := ledger.OpenBackup(f, fi.Size(), format)
	if err != nil {
		t.Fatalf("OpenBackup(%s) err = %v", file, err)
	}
	return b
}

// TestBackupRemoteHSM: a node whose HSM is another kmsledger (the remote
// kind) is backed up and restored with the same remote HSM.
func TestBackupRemoteHSM(t *testing.T) {
	h := open(t, backupCfg(t.TempDir(), soft("soft", newSoftKey(t))))
	hc, addr := serveAt(t, h)
	if err := hc.CreateEnclave(t.Context(), "hsm"); err != nil {
		t.Fatal(err)
	}
	if err := hc.CreateKey(t.Context(), "hsm", "wrap", "", false); err != nil {
		t.Fatal(err)
	}
	remote := config.HSM{Name: "remote", Remote: &config.Remote{Server: []string{addr}, Enclave: "hsm", Key: "wrap", AuthKey: h.RootKey, CA: h.CAFile}}
	dir := t.TempDir()
	n := open(t, backupCfg(dir, remote))
	c, _ := serveAt(t, n)
	keys := populate(t, c)
	file := download(t, c)
	n.Close()
	target := filepath.Join(t.TempDir(), "restored")
	if _, err := node.RestoreOffline(t.Context(), node.RestoreConfig{File: file, Dir: target, HSMs: []config.HSM{remote}}); err != nil {
		t.Fatalf("RestoreOffline(remote HSM) err = %v", err)
	}
	r := open(t, backupCfg(target, remote))
	rc, _ := serveAt(t, r)
	checkDecrypts(t, rc, keys)
}

// TestDBRoutes: /v1/db is root only; an upload is bounded, checked, and
// refused with how to restore offline; nothing changes.
func TestDBRoutes(t *testing.T) {
	cfg := backupCfg(t.TempDir(), soft("soft", newSoftKey(t)))
	cfg.ConfigureAPI = func(c *api.Config) { c.DB.MaxUpload = 1 << 20 }
	n := open(t, cfg)
	c, addr := serveAt(t, n)
	populate(t, c)
	file := download(t, c)
	good, _ := os.ReadFile(file)
	ctx := t.Context()

	// Not root: an identity of the enclave, and a random certificate.
	userKey, userID := newAPIKey(t)
	if err := c.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: userID, Privilege: "Admin"}); err != nil {
		t.Fatal(err)
	}
	otherKey, _ := newAPIKey(t)
	for name, k := range map[string]string{"enclave admin": userKey, "unknown identity": otherKey} {
		uc := rootClient(t, n, addr, k)
		if _, err := uc.DownloadBackup(ctx, &bytes.Buffer{}); !isStatus(err, 403) {
			t.Errorf("%s: GET /v1/db err = %v, want 403", name, err)
		}
		if err := uc.UploadBackup(ctx, bytes.NewReader(good), int64(len(good))); !isStatus(err, 403) {
			t.Errorf("%s: PUT /v1/db err = %v, want 403", name, err)
		}
	}
	noCert, err := client.New(client.Config{Endpoints: []string{addr}, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noCert.DownloadBackup(ctx, &bytes.Buffer{}); err == nil {
		t.Error("GET /v1/db without a certificate succeeded")
	}

	seq, _, _ := n.Store.ChainHead("LEDGER")
	before := stateOf(t, n)
	if err := c.UploadBackup(ctx, bytes.NewReader(good), int64(len(good))); !isStatus(err, 409) || !strings.Contains(err.Error(), "kmsledger restore") {
		t.Errorf("PUT /v1/db (good backup) err = %v, want 409 saying how to restore offline", err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 1
	for name, body := range map[string][]byte{"changed byte": bad, "truncated": good[:len(good)/2], "empty": {}, "not gzip": []byte("hello")} {
		if err := c.UploadBackup(ctx, bytes.NewReader(body), int64(len(body))); !isStatus(err, 400) {
			t.Errorf("PUT /v1/db (%s) err = %v, want 400", name, err)
		}
	}
	big := make([]byte, 1<<20+1)
	if err := c.UploadBackup(ctx, bytes.NewReader(big), int64(len(big))); !isStatus(err, 413) {
		t.Errorf("PUT /v1/db (over the limit, with its length) err = %v, want 413", err)
	}
	if err := c.UploadBackup(ctx, bytes.NewReader(big), -1); !isStatus(err, 413) {
		t.Errorf("PUT /v1/db (over the limit, chunked) err = %v, want 413", err)
	}
	if after, _, _ := n.Store.ChainHead("LEDGER"); after != seq || before != stateOf(t, n) {
		t.Errorf("uploads changed the node: LEDGER %d -> %d", seq, after)
	}
}

func newAPIKey(t *testing.T) (key, id string) {
	t.Helper()
	k, err := wire.GenerateAPIKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := wire.ParseAPIKey(k)
	if err != nil {
		t.Fatal(err)
	}
	id, err = wire.Identity(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

func isStatus(err error, status int) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Status == status
}
