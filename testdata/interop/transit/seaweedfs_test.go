package transitinterop

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
)

// TestSeaweedFS: an unmodified SeaweedFS S3 gateway (`weed mini`) with its
// OpenBao/Vault KMS provider pointed at kmsledger's Transit API. SSE-KMS
// PUTs of 1 KiB, 1 MiB and a 20 MiB multipart object (through mc) read
// back byte-identical, also after both processes restart; a key disabled
// in kmsledger makes its objects unreadable until it is enabled again.
// The key is created by SeaweedFS's first PUT (Transit's upsert, derived
// because SeaweedFS sends a context). Binaries: KMSLEDGER_WEED_BIN
// (.ci/seaweedfs-bins.sh) and KMSLEDGER_MC_BIN (.ci/minio-bins.sh).
func TestSeaweedFS(t *testing.T) {
	weed, mc := os.Getenv("KMSLEDGER_WEED_BIN"), os.Getenv("KMSLEDGER_MC_BIN")
	if weed == "" || mc == "" {
		t.Fatal("KMSLEDGER_WEED_BIN and KMSLEDGER_MC_BIN must be set: run testdata/interop/run.sh")
	}
	dir := t.TempDir()
	bin, err := harness.BuildKMSLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	var hsmKey [32]byte
	rand.Read(hsmKey[:])
	kmsDir := filepath.Join(dir, "kmsdata")
	startKMS := func() *harness.DevServer {
		t.Helper()
		s, err := harness.StartDev(bin, dir, "--hsm-key", "hsm:aes256:"+base64.StdEncoding.EncodeToString(hsmKey[:]), kmsDir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	kmsSrv := startKMS()
	defer func() { kmsSrv.Stop() }()

	ports := weedPorts(t)
	weedDir := filepath.Join(dir, "weed")
	os.MkdirAll(weedDir, 0o700)
	const access, secret = "some_access_key1", "some_secret_key1"
	startWeed := func(e *harness.DevEnv) *harness.Proc {
		t.Helper()
		conf := map[string]any{
			"identities": []any{map[string]any{"name": "admin", "credentials": []any{map[string]any{"accessKey": access, "secretKey": secret}},
				"actions": []string{"Admin", "Read", "List", "Tagging", "Write"}}},
			"kms": map[string]any{"default_provider": "kmsledger", "providers": map[string]any{"kmsledger": map[string]any{
				"type": "openbao", "address": e.Endpoint, "token": e.RootKey.String(), "transit_path": "transit",
				"ca_cert": e.CAFile, "cache_enabled": false}}},
		}
		b, _ := json.Marshal(conf)
		cfg := filepath.Join(dir, "s3.json")
		if err := os.WriteFile(cfg, b, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := harness.Start(harness.ProcConfig{Name: "weed", Bin: weed, Dir: dir, Log: filepath.Join(dir, "weed.log"),
			Args: []string{"mini", "-dir=" + weedDir, "-ip=127.0.0.1", "-s3.config=" + cfg, "-webdav=false", "-admin.ui=false",
				"-master.port=" + strconv.Itoa(ports[0]), "-filer.port=" + strconv.Itoa(ports[1]),
				"-volume.port=" + strconv.Itoa(ports[2]), "-s3.port=" + strconv.Itoa(ports[3])}})
		if err != nil {
			t.Fatal(err)
		}
		s3 := "http://127.0.0.1:" + strconv.Itoa(ports[3])
		if err := p.WaitReady(func() error {
			resp, err := http.Get(s3)
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		}); err != nil {
			t.Fatalf("weed: %v\n%s", err, harness.TailFile(filepath.Join(dir, "weed.log"), 40))
		}
		return p
	}
	weedProc := startWeed(kmsSrv.Env)
	defer func() { weedProc.Stop() }()

	mcDir := filepath.Join(dir, "mc")
	run := func(args ...string) (string, error) {
		cmd := exec.Command(mc, append([]string{"--config-dir", mcDir, "--no-color"}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("mc %s: %v\n%s\n%s", strings.Join(args, " "), err, out, harness.TailFile(filepath.Join(dir, "weed.log"), 40))
		}
		return out
	}
	must("alias", "set", "sw", "http://127.0.0.1:"+strconv.Itoa(ports[3]), access, secret)
	must("mb", "sw/bucket")
	key := harness.UniqueName("seaweed")
	files := map[string][]byte{}
	for name, size := range map[string]int{"small": 1 << 10, "medium": 1 << 20, "large": 20 << 20} {
		b := make([]byte, size)
		rand.Read(b)
		files[name] = b
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		must("cp", "--enc-kms", "sw/bucket/="+key, p, "sw/bucket/"+name)
	}
	check := func(when string) {
		t.Helper()
		for name, want := range files {
			got := must("cat", "sw/bucket/"+name)
			if !bytes.Equal([]byte(got), want) {
				t.Fatalf("%s: GET %s: %d bytes, not what was PUT (%d bytes)", when, name, len(got), len(want))
			}
		}
	}
	check("after PUT")
	if st := must("stat", "sw/bucket/large"); !strings.Contains(st, key) {
		t.Fatalf("stat does not name the KMS key %s:\n%s", key, st)
	}
	// SeaweedFS's first PUT created the key, derived (a context was sent).
	k, err := newVault(kmsSrv.Env.Endpoint, kmsSrv.Env.CAFile, kmsSrv.Env.RootKey.String())
	if err != nil {
		t.Fatal(err)
	}
	if r, err := k.read("transit/keys/" + key); err != nil || r == nil || r.Data["derived"] != true {
		t.Fatalf("the key SeaweedFS made = %v, %v; want derived", r, err)
	}

	// Restart both.
	weedProc.Stop()
	kmsSrv.Stop()
	kmsSrv = startKMS()
	weedProc = startWeed(kmsSrv.Env)
	check("after restarting both")

	// Disabled in kmsledger: unreadable until enabled.
	cli := func(args ...string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "MINIO_KMS_SERVER="+kmsSrv.Env.Endpoint, "MINIO_KMS_API_KEY="+kmsSrv.Env.RootKey.String(),
			"KMSLEDGER_CA_FILE="+kmsSrv.Env.CAFile)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kmsledger %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	cli("disable-key", "-e", enclave, key)
	if out, err := run("cat", "sw/bucket/small"); err == nil && out == string(files["small"]) {
		t.Fatal("GET of an object under a disabled key succeeded")
	}
	cli("enable-key", "-e", enclave, key)
	check("after enabling the key again")
}

// weedPorts returns four free loopback ports below 55535 whose gRPC
// companions (port + 10000, SeaweedFS's rule) are free too.
func weedPorts(t *testing.T) []int {
	t.Helper()
	var out []int
	used := map[int]bool{}
	for len(out) < 4 {
		// Both p and p+10000 (weed's gRPC port) below Linux's ephemeral
		// range (32768 and up), where a port free a moment ago may be
		// taken by an outgoing connection before weed binds it.
		n, _ := rand.Int(rand.Reader, big.NewInt(12000))
		p := 10000 + int(n.Int64())
		if used[p] || used[p+10000] || !free(p) || !free(p+10000) {
			continue
		}
		used[p], used[p+10000] = true, true
		out = append(out, p)
	}
	return out
}

func free(port int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
