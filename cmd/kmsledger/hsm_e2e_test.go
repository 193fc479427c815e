package main

// End-to-end tests of the root of trust (issue 5) with real processes:
// kmsledger servers and CLI runs as children, real TLS, a real SoftHSM2
// token. SOFTHSM2_CONF is given to the children only, so nothing here
// loads a PKCS#11 module in the test process.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/hsm/softkey"
)

const softHSMLib = "/usr/lib/softhsm/libsofthsm2.so"

// child is a kmsledger process; out collects its stdout and stderr.
type child struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	out     strings.Builder
	serving chan string   // receives the address once it serves
	done    chan struct{} // closed when it exited and its output is read
}

// launch starts `kmsledger server args...` with exactly env (see
// childEnv); it waits until the server serves (serve) or exits (!serve).
func launch(t *testing.T, serve bool, env []string, args ...string) (*child, string) {
	t.Helper()
	bin, err := buildBinary()
	must(t, err)
	p := &child{cmd: exec.Command(bin, append([]string{"server"}, args...)...), serving: make(chan string, 1), done: make(chan struct{})}
	pr, pw := io.Pipe()
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, pw, pw
	must(t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if _, rest, ok := strings.Cut(sc.Text(), "serving https://"); ok {
				p.serving <- strings.Fields(rest)[0]
			}
		}
		io.Copy(io.Discard, pr)
		close(p.done)
	}()
	go func() { p.cmd.Wait(); pw.Close() }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	select {
	case addr := <-p.serving:
		if !serve {
			t.Fatalf("server started, want a refusal:\n%s", p.output())
		}
		return p, addr
	case <-p.done:
		if serve || p.cmd.ProcessState.ExitCode() == 0 {
			t.Fatalf("server exited with status %d:\n%s", p.cmd.ProcessState.ExitCode(), p.output())
		}
		t.Logf("refused as expected: %s", p.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("server neither served nor exited:\n%s", p.output())
	}
	return p, ""
}

func startServer(t *testing.T, env []string, args ...string) (*child, string) {
	t.Helper()
	return launch(t, true, env, args...)
}

// failServer runs a server that must exit with a non-zero status without
// serving, and returns its output.
func failServer(t *testing.T, env []string, args ...string) string {
	t.Helper()
	p, _ := launch(t, false, env, args...)
	return p.output()
}

func (p *child) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// firstRoot waits for the root API key and identity a server prints at
// its first start (after the serving line) and returns them.
func (p *child) firstRoot(t *testing.T) (key, id string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(p.output(), "Root identity:"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no root API key printed:\n%s", p.output())
		}
	}
	return printedRoot(t, p.output())
}

// stop ends the server with SIGTERM and returns all of its output.
func (p *child) stop(t *testing.T) string {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not stop on SIGTERM:\n%s", p.output())
	}
	return p.output()
}

// childEnv is the test's environment without any kmsledger, MinIO KMS or
// SoftHSM2 setting, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KMSLEDGER_") && !strings.HasPrefix(kv, "MINIO_KMS_") && !strings.HasPrefix(kv, "SOFTHSM2_CONF=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// runCLI runs `kmsledger args...` to its end; mustCLI fails on an error.
func runCLI(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	bin, err := buildBinary()
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustCLI(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, err := runCLI(t, env, args...)
	if err != nil {
		t.Fatalf("kmsledger %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// printedRoot returns the root API key and identity printed by a server
// at its first start, or by `identity`.
func printedRoot(t *testing.T, out string) (key, id string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		switch f := strings.Fields(line); {
		case len(f) > 0 && strings.HasPrefix(f[len(f)-1], "k1:") && (len(f) == 1 || strings.HasPrefix(line, "Root API key:")):
			key = f[len(f)-1]
		case len(f) >= 2 && (f[0] == "Identity:" || strings.HasPrefix(line, "Root identity:")):
			id = f[len(f)-1]
		}
	}
	if key == "" || id == "" {
		t.Fatalf("no root API key and identity in:\n%s", out)
	}
	return key, id
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	must(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newKMSClient connects to addr, trusting the PEM certificate caFile.
func newKMSClient(t *testing.T, addr, caFile, apiKey string) *client.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	must(t, err)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := client.New(client.Config{Endpoints: []string{addr}, APIKey: apiKey, RootCAs: roots, Timeout: 20 * time.Second})
	must(t, err)
	t.Cleanup(c.Close)
	return c
}

// sealedData are ciphertexts made by keys of enclave "app"; check
// decrypts every one.
type sealedData map[string][]byte

func makeKeys(t *testing.T, c *client.Client, names ...string) sealedData {
	t.Helper()
	must(t, c.CreateEnclave(context.Background(), "app"))
	d := sealedData{}
	for _, n := range names {
		must(t, c.CreateKey(context.Background(), "app", n, "", false))
		e, err := c.Encrypt(context.Background(), "app", n, 0, []byte("plaintext of "+n), []byte(n))
		must(t, err)
		d[n] = e.Ciphertext
	}
	return d
}

func (d sealedData) check(t *testing.T, c *client.Client) {
	t.Helper()
	for n, ct := range d {
		p, err := c.Decrypt(context.Background(), "app", n, 0, ct, []byte(n))
		if err != nil || string(p.Plaintext) != "plaintext of "+n {
			t.Errorf("Decrypt(%s) = %v, want the plaintext", n, err)
		}
	}
}

// eachFile calls fn with the path and content of every file under dir.
func eachFile(t *testing.T, dir string, fn func(path string, b []byte)) {
	t.Helper()
	n := 0
	must(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		fn(path, b)
		n++
		return err
	}))
	if n < 3 {
		t.Fatalf("%s holds %d files; the check proves little", dir, n)
	}
}

// hashDir lists every file under dir with its SHA-256, sorted by path.
func hashDir(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	eachFile(t, dir, func(path string, b []byte) { lines = append(lines, fmt.Sprintf("%x %s", sha256.Sum256(b), path)) })
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// softHSMToken makes a SoftHSM2 token labelled "kms" with user PIN pin in
// a temporary directory; it returns the SOFTHSM2_CONF=... setting.
func softHSMToken(t *testing.T, pin string) string {
	t.Helper()
	if _, err := os.Stat(softHSMLib); err != nil {
		t.Fatalf("SoftHSM2: %v (CI installs the softhsm2 package)", err)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	must(t, os.Mkdir(tokens, 0o700))
	conf := "SOFTHSM2_CONF=" + writeFile(t, filepath.Join(dir, "softhsm2.conf"),
		"directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n")
	cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "kms", "--pin", pin, "--so-pin", "so-"+pin)
	cmd.Env = childEnv(conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v: %s", err, out)
	}
	return conf
}

func pkcs11Config(dir, pinLine, key string) string {
	return "version: v1\naddress: 127.0.0.1:0\ndir: " + dir + "\nhsm:\n  - name: tok\n    pkcs11:\n      module: " + softHSMLib +
		"\n      token: kms\n      " + pinLine + "\n      key: " + key + "\n"
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestHSMPKCS11Token: init-pkcs11 creates the key on a SoftHSM2 token; a
// server whose only HSM is that key initialises, keeps a key, and after a
// restart (PIN from a file this time) decrypts with it. A wrong PIN or a
// missing key label is refused, naming the HSM and the cause, with the
// data dir unchanged. identity --config prints the root the server uses.
func TestHSMPKCS11Token(t *testing.T) {
	// YAML syntax in the PIN: ${...} values are taken verbatim.
	pin := "#" + randomHex(6) + `: '"`
	softhsm := softHSMToken(t, pin)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	envConf := writeFile(t, filepath.Join(tmp, "env.yaml"), pkcs11Config(data, "pin: ${KL_TEST_PIN}", "rek"))
	pinFile := writeFile(t, filepath.Join(tmp, "pin"), pin+"\n")
	fileConf := writeFile(t, filepath.Join(tmp, "file.yaml"), pkcs11Config(data, "pin_file: "+pinFile, "rek"))
	env := childEnv(softhsm, "KL_TEST_PIN="+pin)

	if out := mustCLI(t, env, "hsm", "init-pkcs11", "--config", envConf); !strings.Contains(out, `created key "rek"`) {
		t.Fatalf("first init-pkcs11 printed %q, want created key", out)
	}
	if out := mustCLI(t, env, "hsm", "init-pkcs11", "--config", envConf); !strings.Contains(out, `key "rek" exists`) {
		t.Fatalf("second init-pkcs11 printed %q, want key exists", out)
	}

	p, addr := startServer(t, env, "--config", envConf)
	rootKey, rootID := p.firstRoot(t)
	caFile := filepath.Join(data, "tls", "cert.pem")
	c := newKMSClient(t, addr, caFile, rootKey)
	sealed := makeKeys(t, c, "k1", "k2")
	// The sealed root key is in the ledger, which the running server holds.
	if out, err := runCLI(t, env, "identity", "--config", envConf); err == nil || !strings.Contains(out, "stop it first") {
		t.Errorf("identity --config while serving: err = %v, output %q; want a refusal saying to stop the server", err, out)
	}
	p.stop(t)

	// identity --config on the stopped node: the sealed root key, also
	// when a software HSM key (which would derive another) comes first.
	// It reads the ledger without writing.
	soft, err := softkey.Generate(rand.Reader)
	must(t, err)
	before := hashDir(t, data)
	for _, env := range [][]string{env, append(env, "KMSLEDGER_HSM_KEY="+soft)} {
		if key, id := printedRoot(t, mustCLI(t, env, "identity", "--config", envConf)); key != rootKey || id != rootID {
			t.Errorf("identity --config = %s %s, want the server's %s %s", key, id, rootKey, rootID)
		}
	}
	if after := hashDir(t, data); after != before {
		t.Errorf("identity --config changed the data dir:\nbefore\n%s\nafter\n%s", before, after)
	}

	// Restart with the PIN from pin_file: the REK unseals, keys decrypt.
	p, addr = startServer(t, childEnv(softhsm), "--config", fileConf)
	sealed.check(t, newKMSClient(t, addr, caFile, rootKey))
	p.stop(t)

	before = hashDir(t, data)
	tests := []struct {
		name, conf string
		env        []string
		want       []string
	}{
		{"WrongPIN", envConf, childEnv(softhsm, "KL_TEST_PIN=wrong-"+pin), []string{`HSM "tok"`, "PIN", "incorrect"}},
		{"WrongPINFile", writeFile(t, filepath.Join(tmp, "bad-file.yaml"), pkcs11Config(data, "pin_file: "+writeFile(t, filepath.Join(tmp, "bad-pin"), "0000\n"), "rek")),
			childEnv(softhsm), []string{`HSM "tok"`, "PIN", "incorrect"}},
		{"KeyMissing", writeFile(t, filepath.Join(tmp, "nokey.yaml"), pkcs11Config(data, "pin: ${KL_TEST_PIN}", "absent")),
			env, []string{`HSM "tok"`, `no AES key labelled "absent"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := failServer(t, tc.env, "--config", tc.conf)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("refusal %q does not say %q", out, w)
				}
			}
			if after := hashDir(t, data); after != before {
				t.Errorf("data dir changed by a refused start:\nbefore\n%s\nafter\n%s", before, after)
			}
		})
	}
}

// remoteHSM is server A: a kmsledger whose key hsm/rek-wrapper seals
// other nodes' REKs; authKey may encrypt and decrypt with it, nothing else.
type remoteHSM struct {
	p                     *child
	dir, addr, env        string
	hsmKey, authKey, conf string
}

func startRemoteHSM(t *testing.T) *remoteHSM {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	a := &remoteHSM{dir: t.TempDir(), addr: ln.Addr().String()}
	ln.Close()
	var rootKey string
	a.hsmKey, rootKey = newHSMKey(t)
	a.start(t)
	ctx := context.Background()
	c := newKMSClient(t, a.addr, filepath.Join(a.dir, "tls", "cert.pem"), rootKey)
	must(t, c.CreateEnclave(ctx, "hsm"))
	must(t, c.CreateKey(ctx, "hsm", "rek-wrapper", "", false))
	must(t, c.CreateKey(ctx, "hsm", "other", "", false))
	a.authKey, err = wire.GenerateAPIKey(rand.Reader)
	must(t, err)
	signer, err := wire.ParseAPIKey(a.authKey)
	must(t, err)
	id, err := wire.Identity(signer.Public())
	must(t, err)
	must(t, c.CreateIdentity(ctx, "hsm", &wire.CreateIdentityRequest{Identity: id}))
	must(t, c.CreatePolicy(ctx, "hsm", &wire.CreatePolicyRequest{Name: "rek-wrapper",
		Allow: map[string][]string{"KEY:ENCRYPT": {"rek-wrapper"}, "KEY:DECRYPT": {"rek-wrapper"}}}))
	must(t, c.AssignPolicy(ctx, "hsm", id, "rek-wrapper"))
	// The remote HSM section of a node sealed by A; the API key comes
	// from the environment (KL_REMOTE_AUTH).
	a.conf = "  - name: remote\n    minkms:\n      server: [\"" + a.addr + "\"]\n      enclave: hsm\n      key: rek-wrapper\n" +
		"      auth_key: ${KL_REMOTE_AUTH}\n      ca: " + filepath.Join(a.dir, "tls", "cert.pem") + "\n"
	a.env = "KL_REMOTE_AUTH=" + a.authKey
	return a
}

func (a *remoteHSM) start(t *testing.T) {
	t.Helper()
	a.p, _ = startServer(t, childEnv("KMSLEDGER_HSM_KEY="+a.hsmKey), a.dir, "--address", a.addr, "--log-level", "warn")
}

// TestHSMRemoteKMSLedger: node B's only HSM is a key in server A's
// enclave. With A stopped, B refuses to start, naming the unreachable HSM,
// and writes nothing; with A back, B starts with all of its keys.
func TestHSMRemoteKMSLedger(t *testing.T) {
	a := startRemoteHSM(t)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "b")
	conf := writeFile(t, filepath.Join(tmp, "b.yaml"), "version: v1\naddress: 127.0.0.1:0\ndir: "+data+"\nhsm:\n"+a.conf)
	env := childEnv(a.env)

	b, addr := startServer(t, env, "--config", conf)
	rootKey, _ := b.firstRoot(t)
	caFile := filepath.Join(data, "tls", "cert.pem")
	bc := newKMSClient(t, addr, caFile, rootKey)
	sealed := makeKeys(t, bc, "k1", "k2", "k3")
	// An outage of A does not touch B's running crypto: its REK is unsealed.
	a.p.stop(t)
	sealed.check(t, bc)
	if out := b.stop(t); strings.Contains(out, a.authKey) {
		t.Errorf("B's log shows its API key for A")
	}

	before := hashDir(t, data)
	out := failServer(t, env, "--config", conf)
	for _, w := range []string{`HSM "remote"`, "unreachable", a.addr} {
		if !strings.Contains(out, w) {
			t.Errorf("refusal with A stopped %q does not say %q", out, w)
		}
	}
	if after := hashDir(t, data); after != before {
		t.Errorf("B's data dir changed by a refused start:\nbefore\n%s\nafter\n%s", before, after)
	}

	a.start(t)
	b, addr = startServer(t, env, "--config", conf)
	sealed.check(t, newKMSClient(t, addr, caFile, rootKey))
	b.stop(t)
}

// TestHSMSeedProcedure is the seed's procedure: a node with a local
// software HSM key gets the remote kmsledger HSM in its config, is
// restarted, which seals the REK under it (no add-hsm), and the node then
// starts without the local key with every key intact. Then the local key
// is replaced (same name, new key, sealed at start): rm-hsm of the shared
// name is refused, the key id picks the old sealing, the last HSM cannot
// be removed, a removed HSM is not sealed again at start, and a removed
// sealing no longer starts the node.
func TestHSMSeedProcedure(t *testing.T) {
	a := startRemoteHSM(t)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "n")
	hsmKey, rootKey := newHSMKey(t)
	caFile := filepath.Join(data, "tls", "cert.pem")
	local := "KMSLEDGER_HSM_KEY=" + hsmKey

	n, addr := startServer(t, childEnv(local), data, "--address", "127.0.0.1:0")
	sealed := makeKeys(t, newKMSClient(t, addr, caFile, rootKey), "k1", "k2")
	n.stop(t)

	conf := writeFile(t, filepath.Join(tmp, "n.yaml"), "version: v1\naddress: 127.0.0.1:0\ndir: "+data+"\nhsm:\n"+a.conf)
	sn := &seedNode{t: t, caFile: caFile, rootKey: rootKey}
	n, sn.addr = startServer(t, childEnv(local, a.env), "--config", conf)
	// No add-hsm: the configured remote HSM was sealed at start.
	if out := n.output(); !strings.Contains(out, "sealed the root encryption key under a configured HSM") || !strings.Contains(out, "hsm=remote") {
		t.Errorf("start with the remote HSM configured did not seal under it:\n%s", out)
	}
	oldID, remoteID := "soft:", "kmsledger:hsm/rek-wrapper"
	for id := range sn.sealings() {
		if strings.HasPrefix(id, "soft:") {
			oldID = id
		}
	}
	if got, want := sn.sealings(), map[string]string{oldID: "soft soft", remoteID: "remote kmsledger"}; !maps.Equal(got, want) {
		t.Fatalf("sealings after add-hsm = %v, want %v", got, want)
	}
	n.stop(t)

	// Without the local key: the remote HSM alone starts the node.
	n, addr = startServer(t, childEnv(a.env), "--config", conf)
	if out := n.output(); !strings.Contains(out, "root encryption key unsealed") || !strings.Contains(out, "hsm=remote") {
		t.Errorf("restart without the local key did not say it unsealed with remote:\n%s", out)
	}
	sealed.check(t, newKMSClient(t, addr, caFile, rootKey))
	n.stop(t)

	newKey := sn.replaceLocalKey(conf, a.env, oldID, remoteID)

	// The removed sealings no longer start the node; the new key does.
	out := failServer(t, childEnv(local, a.env), "--config", conf)
	for _, w := range []string{`"soft" (` + oldID + `): the ledger is not sealed under this HSM key`, `"remote"`} {
		if !strings.Contains(out, w) {
			t.Errorf("start with removed sealings: %q, want a refusal saying %q", out, w)
		}
	}
	n, addr = startServer(t, childEnv("KMSLEDGER_HSM_KEY="+newKey), data, "--address", "127.0.0.1:0")
	sealed.check(t, newKMSClient(t, addr, caFile, rootKey))
	n.stop(t)
}

// seedNode is the node of TestHSMSeedProcedure as the CLI reaches it, as
// root; addr changes at each start.
type seedNode struct {
	t                     *testing.T
	addr, caFile, rootKey string
}

// cli runs the CLI against the node.
func (sn *seedNode) cli(args ...string) (string, error) {
	return runCLI(sn.t, childEnv("MINIO_KMS_SERVER="+sn.addr, "MINIO_KMS_API_KEY="+sn.rootKey, "KMSLEDGER_CA_FILE="+sn.caFile), args...)
}

// sealings lists the sealings of ls-hsm: "name kind" by key id.
func (sn *seedNode) sealings() map[string]string {
	sn.t.Helper()
	out, err := sn.cli("ls-hsm", "--json")
	var list []wire.HSMInfo
	if err == nil {
		err = json.Unmarshal([]byte(out), &list)
	}
	if err != nil {
		sn.t.Fatalf("ls-hsm --json: %v\n%s", err, out)
	}
	m := map[string]string{}
	for _, h := range list {
		if h.Sealed {
			m[h.KeyID] = h.Name + " " + h.Kind
		}
	}
	return m
}

// replaceLocalKey starts the node of conf with a new local key under the
// same name "soft" (sealed at start beside the old one and remote),
// checks the refusals of rm-hsm and add-hsm, removes the old soft
// sealing oldID and the remote one, and checks a restart keeps them
// removed. It returns the new key.
func (sn *seedNode) replaceLocalKey(conf, remoteEnv, oldID, remoteID string) string {
	t := sn.t
	t.Helper()
	newKey, err := softkey.Generate(rand.Reader)
	must(t, err)
	var n *child
	n, sn.addr = startServer(t, childEnv("KMSLEDGER_HSM_KEY="+newKey, remoteEnv), "--config", conf)
	if got := sn.sealings(); len(got) != 3 {
		t.Fatalf("sealings after a start with a new local key = %v, want it sealed at start beside the old one and remote", got)
	}
	refusals := []struct{ args, want string }{
		{"rm-hsm soft", "several sealings"},
		{"rm-hsm nope", "not sealed under an HSM of that name"},
		{"add-hsm remote", "already sealed under this HSM"},
	}
	for _, r := range refusals {
		if out, err := sn.cli(strings.Fields(r.args)...); err == nil || !strings.Contains(out, r.want) {
			t.Errorf("%s: err = %v, output %q; want a refusal saying %q", r.args, err, out, r.want)
		}
	}
	for _, id := range []string{oldID, "remote"} {
		if out, err := sn.cli("rm-hsm", id); err != nil {
			t.Fatalf("rm-hsm %s: %v\n%s", id, err, out)
		}
	}
	if out, err := sn.cli("rm-hsm", "soft"); err == nil || !strings.Contains(out, "refusing to remove the last HSM") {
		t.Errorf("rm-hsm of the last HSM: err = %v, output %q; want a refusal", err, out)
	}
	if got := sn.sealings(); len(got) != 1 || got[oldID] != "" || got[remoteID] != "" {
		t.Fatalf("sealings after rm-hsm = %v, want only the new soft key", got)
	}
	n.stop(t)
	// A removed HSM stays removed at the next start, although configured.
	n, sn.addr = startServer(t, childEnv("KMSLEDGER_HSM_KEY="+newKey, remoteEnv), "--config", conf)
	if got := sn.sealings(); len(got) != 1 || got[remoteID] != "" {
		t.Fatalf("sealings after a restart = %v, want the removed remote HSM still removed", got)
	}
	n.stop(t)
	return newKey
}

// TestHSMIdentityConfigSoft: for a configuration whose first HSM is a
// software key, identity --config derives the root API key without the
// ledger, and it is the one the server prints and accepts.
func TestHSMIdentityConfigSoft(t *testing.T) {
	hsmKey, err := softkey.Generate(rand.Reader)
	must(t, err)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	conf := writeFile(t, filepath.Join(tmp, "c.yaml"),
		"version: v1\naddress: 127.0.0.1:0\ndir: "+data+"\nhsm:\n  - name: local\n    soft:\n      key: ${KL_SOFT}\n")
	env := childEnv("KL_SOFT=" + hsmKey)
	key, id := printedRoot(t, mustCLI(t, env, "identity", "--config", conf))

	p, addr := startServer(t, env, "--config", conf)
	sKey, sID := p.firstRoot(t)
	if sKey != key || sID != id {
		t.Fatalf("server root = %s %s, identity --config = %s %s", sKey, sID, key, id)
	}
	c := newKMSClient(t, addr, filepath.Join(data, "tls", "cert.pem"), key)
	if err := c.CreateEnclave(context.Background(), "e"); err != nil {
		t.Fatalf("root from identity --config cannot act as root: %v", err)
	}
	if k2, id2 := printedRoot(t, mustCLI(t, env, "identity", "--config", conf)); k2 != key || id2 != id {
		t.Fatalf("identity --config while serving = %s %s, want %s %s", k2, id2, key, id)
	}
	p.stop(t)
}

// TestHSMSecretsNotLeaked: a node with a software HSM key (environment)
// and a PKCS#11 HSM (PIN from the environment), at debug log level: no
// HSM key (string or bytes) or PIN shows in its logs, its data dir or ps;
// the root API key is printed at the first start only.
func TestHSMSecretsNotLeaked(t *testing.T) {
	pin := "pin-" + randomHex(8)
	softhsm := softHSMToken(t, pin)
	hsmKey, err := softkey.Generate(rand.Reader)
	must(t, err)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(hsmKey, softkey.Prefix))
	must(t, err)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	conf := writeFile(t, filepath.Join(tmp, "c.yaml"), pkcs11Config(data, "pin: ${KL_TEST_PIN}", "rek"))
	env := childEnv(softhsm, "KL_TEST_PIN="+pin, "KMSLEDGER_HSM_KEY="+hsmKey, "KMSLEDGER_LOG_LEVEL=debug")
	mustCLI(t, env, "hsm", "init-pkcs11", "--config", conf)
	var rootKey string
	leaks := func(where string, b []byte, withRoot bool) {
		t.Helper()
		secrets := map[string][]byte{"HSM key": []byte(hsmKey), "HSM key base64": []byte(strings.TrimPrefix(hsmKey, softkey.Prefix)),
			"HSM key bytes": raw, "PIN": []byte(pin)}
		if withRoot {
			secrets["root API key"] = []byte(rootKey)
		}
		for name, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("%s contains the %s", where, name)
			}
		}
	}
	psCheck := func() {
		t.Helper()
		ps, err := exec.Command("ps", "-eo", "args").Output()
		must(t, err)
		if !bytes.Contains(ps, []byte("server --config "+conf)) {
			t.Fatalf("ps -eo args does not show the server:\n%s", ps)
		}
		leaks("ps -eo args", ps, true)
	}

	p, addr := startServer(t, env, "--config", conf)
	rootKey, _ = p.firstRoot(t)
	psCheck()
	makeKeys(t, newKMSClient(t, addr, filepath.Join(data, "tls", "cert.pem"), rootKey), "k1")
	first := p.stop(t)
	if !strings.Contains(first, "level=DEBUG") {
		t.Fatalf("the server did not log at debug level; the log check proves little:\n%s", first)
	}
	leaks("first run's logs", []byte(first), false)

	p, addr = startServer(t, env, "--config", conf)
	psCheck()
	if ls, err := runCLI(t, childEnv("MINIO_KMS_SERVER="+addr, "MINIO_KMS_API_KEY="+rootKey,
		"KMSLEDGER_CA_FILE="+filepath.Join(data, "tls", "cert.pem")), "ls-hsm"); err != nil || !strings.Contains(ls, "tok") {
		t.Fatalf("ls-hsm: %v\n%s", err, ls)
	}
	leaks("second run's logs", []byte(p.stop(t)), true)

	eachFile(t, data, func(path string, b []byte) { leaks(path, b, true) })
}
