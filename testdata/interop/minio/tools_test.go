package minio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
)

// MinIO root credentials of the test servers (loopback only).
const (
	minioUser     = "kmsledger-e2e"
	minioPassword = "kmsledger-e2e-password"
)

// e2e holds the processes and tools of one end-to-end test.
type e2e struct {
	t        *testing.T // the top-level test: owns process clean-up
	dir      string
	red      *harness.Redactor
	ledger   *kmsServer
	minioBin string
	mcBin    string
	mcConfig string
	logs     []string // server logs, printed (tail) on failure
	fig      figures
}

// figures are the numbers the test reports at the end.
type figures struct {
	written, read, refused   int
	writtenBytes, readBytes  int64
	kmsRestarts, minioStarts int
}

// kmsServer is a kmsledger server with a persistent data dir.
type kmsServer struct {
	bin, dir, addr, log string
	hsmKey, rootKey     string // secrets: never logged
	ca                  string // DIR/tls/cert.pem
	kesEnclave          string // --kes-enclave, or "" for no KES API
	p                   *harness.Proc
}

// newE2E returns the harness of a top-level end-to-end test, in a fresh
// temporary dir, with the MinIO and mc binaries. Its clean-up, registered
// before any process starts and so run after all have stopped, prints the
// redacted tail of every server log if the test failed and then logs the
// line report makes of the figures.
func newE2E(t *testing.T, report func(f figures) string) *e2e {
	t.Helper()
	h := &e2e{t: t, dir: t.TempDir(), red: &harness.Redactor{}}
	h.red.Add(minioPassword)
	h.minioBin = requireBinary(t, "KMSLEDGER_MINIO_BIN")
	h.mcBin = requireBinary(t, "KMSLEDGER_MC_BIN")
	h.mcConfig = filepath.Join(h.dir, "mc")
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range h.logs {
				t.Logf("--- tail of %s (redacted) ---\n%s", filepath.Base(l), h.red.Redact(harness.TailFile(l, logTail)))
			}
		}
		t.Log(report(h.fig))
	})
	return h
}

// newLedger builds kmsledger, makes its software HSM key, starts the server
// with a persistent data dir (and the KES API for kesEnclave, if not empty)
// and reads the root API key.
func (h *e2e) newLedger(t *testing.T, kesEnclave string) {
	t.Helper()
	bin, err := harness.BuildKMSLedger(h.dir)
	if err != nil {
		t.Fatalf("build kmsledger: %v", err)
	}
	hsmOut, err := h.run(t, baseEnv(), nil, bin, "--soft-hsm")
	if err != nil {
		t.Fatalf("kmsledger --soft-hsm: %v", err)
	}
	dir := filepath.Join(h.dir, "kmsledger-data")
	h.ledger = &kmsServer{
		bin: bin, dir: dir, addr: freeAddr(t), log: filepath.Join(h.dir, "kmsledger.log"),
		hsmKey: strings.TrimSpace(hsmOut), ca: filepath.Join(dir, "tls", "cert.pem"), kesEnclave: kesEnclave,
	}
	h.red.Add(h.ledger.hsmKey)
	h.logs = append(h.logs, h.ledger.log)
	h.startKMS(t)

	rootOut, err := h.run(t, append(baseEnv(), "KMSLEDGER_HSM_KEY="+h.ledger.hsmKey), nil, bin, "identity")
	if err != nil {
		t.Fatalf("kmsledger identity (root): %v", err)
	}
	if h.ledger.rootKey = field(rootOut, "Root API key:"); h.ledger.rootKey == "" {
		t.Fatalf("kmsledger identity printed no root API key: %q", h.red.Redact(rootOut))
	}
}

// addEnclave creates an enclave and in it the policy name with the rules
// policyJSON.
func (h *e2e) addEnclave(t *testing.T, enclave, name, policyJSON string) {
	t.Helper()
	policy := filepath.Join(h.dir, name+".json")
	if err := os.WriteFile(policy, []byte(policyJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	h.kmsOK(t, "add-enclave", enclave)
	h.kmsOK(t, "add-policy", "-e", enclave, name, policy)
}

// startKMS starts (or restarts) the kmsledger server and waits until it
// serves.
func (h *e2e) startKMS(t *testing.T) {
	t.Helper()
	k := h.ledger
	args := []string{"server", "--address", k.addr}
	if k.kesEnclave != "" {
		args = append(args, "--kes-enclave", k.kesEnclave)
	}
	p, err := h.startProc(harness.ProcConfig{
		Name: "kmsledger", Bin: k.bin, Args: append(args, k.dir), Log: k.log, Marker: "serving https://",
		Env: append(baseEnv(), "KMSLEDGER_HSM_KEY="+k.hsmKey),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(nil); err != nil {
		t.Fatalf("%v (its log is printed at the end)", err)
	}
	k.p = p
	h.fig.kmsRestarts++
}

// restartKMS stops and starts the kmsledger server on the same address.
func (h *e2e) restartKMS(t *testing.T) {
	t.Helper()
	h.ledger.p.Stop()
	h.startKMS(t)
}

// kms runs a kmsledger client command as root and returns its stdout.
func (h *e2e) kms(t *testing.T, args ...string) (string, error) {
	t.Helper()
	k := h.ledger
	env := append(baseEnv(),
		"MINIO_KMS_SERVER=https://"+k.addr,
		"MINIO_KMS_API_KEY="+k.rootKey,
		"KMSLEDGER_CA_FILE="+k.ca)
	return h.run(t, env, nil, k.bin, args...)
}

// kmsOK runs a kmsledger client command that must succeed.
func (h *e2e) kmsOK(t *testing.T, args ...string) string {
	t.Helper()
	out, err := h.kms(t, args...)
	if err != nil {
		t.Fatalf("kmsledger %s: %v", h.red.Redact(strings.Join(args, " ")), err)
	}
	return out
}

// keyInfo is the part of `kmsledger stat-key --json` the test reads.
type keyInfo struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	CreatedBy string `json:"created_by"`
	Versions  []struct {
		Version  uint32     `json:"version"`
		State    string     `json:"state"`
		LastUsed *time.Time `json:"last_used"`
	} `json:"versions"`
}

// statKey returns `kmsledger stat-key --json` of a key.
func (h *e2e) statKey(t *testing.T, enclave, name string) keyInfo {
	t.Helper()
	var ki keyInfo
	out := h.kmsOK(t, "stat-key", "-e", enclave, "--json", name)
	if err := json.Unmarshal([]byte(out), &ki); err != nil {
		t.Fatalf("stat-key %s: %v\n%s", name, err, out)
	}
	return ki
}

// run runs bin with env; stdout goes to w if not nil, else it is returned.
// The error carries the redacted stdout and stderr.
func (h *e2e) run(t *testing.T, env []string, w io.Writer, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if w != nil {
		cmd.Stdout = w
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s %s", err,
			h.red.Redact(strings.TrimSpace(stdout.String())), h.red.Redact(strings.TrimSpace(stderr.String())))
	}
	return stdout.String(), nil
}

// minioServer is a MinIO server process with a persistent data dir.
type minioServer struct {
	alias, data, certs, addr, console, log string
	p                                      *harness.Proc
}

// newMinIO prepares the dirs of a MinIO server that trusts kmsledger's CA.
func (h *e2e) newMinIO(t *testing.T, alias string) *minioServer {
	t.Helper()
	m := &minioServer{
		alias:   alias,
		data:    filepath.Join(h.dir, alias, "data"),
		certs:   filepath.Join(h.dir, alias, "certs"),
		addr:    freeAddr(t),
		console: freeAddr(t),
		log:     filepath.Join(h.dir, alias+".log"),
	}
	ca, err := os.ReadFile(h.ledger.ca)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{m.data, filepath.Join(m.certs, "CAs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(m.certs, "CAs", "kmsledger.pem"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	h.logs = append(h.logs, m.log)
	return m
}

// kmsEnv is the environment that points MinIO at kmsledger.
func (h *e2e) kmsEnv(enclave, apiKey, sseKey string) []string {
	return []string{
		"MINIO_KMS_SERVER=https://" + h.ledger.addr,
		"MINIO_KMS_ENCLAVE=" + enclave,
		"MINIO_KMS_API_KEY=" + apiKey,
		"MINIO_KMS_SSE_KEY=" + sseKey,
	}
}

// launchMinIO starts MinIO with the extra environment and returns the
// process without waiting for it.
func (h *e2e) launchMinIO(t *testing.T, m *minioServer, extraEnv []string) *harness.Proc {
	t.Helper()
	env := append(baseEnv(), "MINIO_ROOT_USER="+minioUser, "MINIO_ROOT_PASSWORD="+minioPassword, "MINIO_UPDATE=off")
	env = append(env, extraEnv...)
	p, err := h.startProc(harness.ProcConfig{
		Name: "minio " + m.alias, Bin: h.minioBin, Env: env, Log: m.log,
		Args: []string{"server", m.data, "--address", m.addr, "--console-address", m.console, "--certs-dir", m.certs},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.fig.minioStarts++
	return p
}

// waitMinIO waits until MinIO's readiness probe answers 200.
func (m *minioServer) waitMinIO(p *harness.Proc) error {
	url := "http://" + m.addr + "/minio/health/ready"
	client := &http.Client{Timeout: 5 * time.Second}
	return p.WaitReady(func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	})
}

// startMinIO starts MinIO, waits until it is ready and sets its mc alias.
func (h *e2e) startMinIO(t *testing.T, m *minioServer, extraEnv []string) {
	t.Helper()
	p := h.launchMinIO(t, m, extraEnv)
	if err := m.waitMinIO(p); err != nil {
		t.Fatalf("%v (its log is printed at the end)", err)
	}
	m.p = p
	// /minio/health/ready can answer 200 a moment before MinIO has
	// initialised its object layer and IAM; mc then gets
	// XMinioServerNotInitialized. Retry that one answer for a while.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		out, err := h.mc(t, "alias", "set", m.alias, "http://"+m.addr, minioUser, minioPassword)
		if err == nil {
			return
		}
		if !strings.Contains(out+err.Error(), "XMinioServerNotInitialized") || time.Now().After(deadline) {
			t.Fatalf("mc alias set %s: %v", m.alias, h.red.Redact(err.Error()))
		}
	}
}

// mc runs `mc --json` with the test.s mc config dir and returns its stdout.
func (h *e2e) mc(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return h.mcTo(t, nil, "--json", args...)
}

// mcTo runs mc with the test.s mc config dir and the given output flag
// ("--json", or "--quiet" for raw output); stdout goes to w if not nil.
func (h *e2e) mcTo(t *testing.T, w io.Writer, output string, args ...string) (string, error) {
	t.Helper()
	env := append(baseEnv(), "MC_CONFIG_DIR="+h.mcConfig, "MC_DISABLE_PAGER=1")
	return h.run(t, env, w, h.mcBin, append([]string{"--no-color", output}, args...)...)
}

// mcOK runs an mc command that must succeed and returns its JSON output.
func (h *e2e) mcOK(t *testing.T, args ...string) string {
	t.Helper()
	out, err := h.mc(t, args...)
	if err != nil {
		t.Fatalf("mc %s: %v", h.red.Redact(strings.Join(args, " ")), err)
	}
	return out
}

// mcJSON runs an mc command that must succeed and decodes its last line.
func (h *e2e) mcJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := strings.TrimSpace(h.mcOK(t, args...))
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("mc %s: %v in %q", h.red.Redact(strings.Join(args, " ")), err, h.red.Redact(out))
	}
}

// object is an object the test wrote, with the digest of its content.
type object struct {
	alias, bucket, name string
	size                int64
	sum                 [sha256.Size]byte
	sseKMSKey           string // "" for SSE-S3
	multipart           bool
}

// path is the mc path of the object.
func (o *object) path() string { return o.alias + "/" + o.bucket + "/" + o.name }

// put uploads an object that must be stored.
func (h *e2e) put(t *testing.T, o *object) {
	t.Helper()
	if err := h.upload(t, o); err != nil {
		t.Fatalf("PUT %s: %v", o.path(), err)
	}
	h.fig.written++
	h.fig.writtenBytes += o.size
}

// upload writes size pseudo-random bytes (seeded by the object's path) to a
// file, records their digest and uploads the file with `mc cp`. mc uploads
// objects above 16 MiB in parts.
func (h *e2e) upload(t *testing.T, o *object) error {
	t.Helper()
	file := filepath.Join(h.dir, "upload-"+strings.ReplaceAll(o.path(), "/", "_"))
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	src := rand.NewChaCha8(sha256.Sum256([]byte(o.path())))
	hash := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, hash), src, o.size); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	copy(o.sum[:], hash.Sum(nil))
	_, err = h.mc(t, "cp", file, o.path())
	if rmErr := os.Remove(file); rmErr != nil {
		t.Fatal(rmErr)
	}
	return err
}

// get downloads an object with `mc cat` and returns its digest and size.
func (h *e2e) get(t *testing.T, o *object) ([sha256.Size]byte, int64, error) {
	t.Helper()
	hash := sha256.New()
	cw := &countWriter{w: hash}
	var sum [sha256.Size]byte
	if _, err := h.mcTo(t, cw, "--quiet", "cat", o.path()); err != nil {
		return sum, cw.n, err
	}
	copy(sum[:], hash.Sum(nil))
	return sum, cw.n, nil
}

// mustRead downloads every object and fails unless each is byte-identical.
func (h *e2e) mustRead(t *testing.T, objs ...*object) {
	t.Helper()
	for _, o := range objs {
		sum, n, err := h.get(t, o)
		if err != nil {
			t.Fatalf("GET %s: %v", o.path(), err)
		}
		if sum != o.sum || n != o.size {
			t.Fatalf("GET %s: %d bytes sha256 %s, want %d bytes sha256 %s", o.path(), n, hex.EncodeToString(sum[:]), o.size, hex.EncodeToString(o.sum[:]))
		}
		h.fig.read++
		h.fig.readBytes += n
	}
}

// mustRefuse fails unless GET of every object fails with the given MinIO
// error code (e.g. kms:KeyNotFound) and returns none of the content: the
// only output of `mc --json cat` must be its JSON error.
func (h *e2e) mustRefuse(t *testing.T, code string, objs ...*object) {
	t.Helper()
	for _, o := range objs {
		out, err := h.mc(t, "cat", o.path())
		if err == nil {
			t.Fatalf("GET %s succeeded (%d bytes), want a failure with %s", o.path(), len(out), code)
		}
		var res struct {
			Status string `json:"status"`
			Error  struct {
				Cause struct {
					Message string `json:"message"`
					Error   struct {
						Code string `json:"Code"`
					} `json:"error"`
				} `json:"cause"`
			} `json:"error"`
		}
		if jerr := json.Unmarshal([]byte(out), &res); jerr != nil || res.Status != "error" {
			t.Fatalf("GET %s: output is not one mc JSON error (%v): %d bytes", o.path(), jerr, len(out))
		}
		if got := res.Error.Cause.Error.Code; got != code {
			t.Fatalf("GET %s: error code %q (%s), want %q", o.path(), got, res.Error.Cause.Message, code)
		}
		h.fig.refused++
	}
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
