package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"aead.dev/mtls"
	"github.com/minio/kms-go/kms"
)

// mainModule is the module path of the repository under test.
const mainModule = "github.com/kmsledger/kmsledger"

// Environment variable names printed by `kmsledger server --dev`.
const (
	envServer  = "MINIO_KMS_SERVER"
	envAPIKey  = "MINIO_KMS_API_KEY"
	envEnclave = "MINIO_KMS_ENCLAVE"
	envSSEKey  = "MINIO_KMS_SSE_KEY"
	envCAFile  = "KMSLEDGER_CA_FILE"
)

// Time limits for setting up the server under test.
const (
	buildTimeout = 5 * time.Minute
	startTimeout = 90 * time.Second
	stopTimeout  = 15 * time.Second
)

// testEnv describes the running server and holds a SysAdmin client for it.
type testEnv struct {
	endpoint string          // MINIO_KMS_SERVER, e.g. https://127.0.0.1:7373
	enclave  string          // MINIO_KMS_ENCLAVE, created by --dev
	sseKey   string          // MINIO_KMS_SSE_KEY
	rootKey  mtls.PrivateKey // MINIO_KMS_API_KEY (SysAdmin)
	rootCAs  *x509.CertPool  // from KMSLEDGER_CA_FILE
	root     *kms.Client     // client authenticated with rootKey
}

// env is the server every test talks to. TestMain sets it once before any
// test runs and never changes it afterwards; it is the only mutable package
// state.
var env *testEnv

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "kmsledger-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	bin, err := buildServer(tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop: build kmsledger:", err)
		return 1
	}
	srv, err := startServer(bin, tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop: start kmsledger:", err)
		return 1
	}
	defer srv.stop()

	env = srv.env
	code := m.Run()
	if code != 0 {
		srv.dumpLogs(os.Stderr)
	}
	return code
}

// repoRoot walks up from the working directory to the directory whose go.mod
// declares the main module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && goModPath(b) == mainModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod declaring %s above the working directory", mainModule)
		}
		dir = parent
	}
}

// goModPath returns the module path declared in a go.mod file.
func goModPath(gomod []byte) string {
	for line := range strings.Lines(string(gomod)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// buildServer compiles cmd/kmsledger into dir and returns the binary's path.
func buildServer(dir string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kmsledger")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, mainModule+"/cmd/kmsledger")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w\n%s", err, out)
	}
	return bin, nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// server is a running `kmsledger server --dev` process.
type server struct {
	cmd    *exec.Cmd
	env    *testEnv
	done   chan struct{} // closed when the process has exited
	mu     sync.Mutex
	stdout bytes.Buffer // server stdout, API key lines removed
	stderr *os.File
}

// startServer runs the binary in dev mode and waits for its export block.
func startServer(bin, dir string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	stderr, err := os.Create(filepath.Join(dir, "server.stderr"))
	if err != nil {
		return nil, err
	}
	s := &server{done: make(chan struct{}), stderr: stderr}
	s.cmd = exec.Command(bin, "server", "--dev", "--address", addr)
	s.cmd.Dir = dir
	s.cmd.Stderr = stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}

	exports := make(chan map[string]string, 1)
	go s.readStdout(out, exports)
	go func() { _ = s.cmd.Wait(); close(s.done) }()

	select {
	case vars := <-exports:
		s.env, err = newTestEnv(vars)
		if err != nil {
			s.stop()
			return nil, err
		}
		return s, nil
	case <-s.done:
		var b strings.Builder
		s.dumpLogs(&b)
		return nil, fmt.Errorf("server exited before printing its environment (%v)\n%s", s.cmd.ProcessState, b.String())
	case <-time.After(startTimeout):
		var b strings.Builder
		s.dumpLogs(&b)
		s.stop()
		return nil, fmt.Errorf("server printed no complete environment within %v\n%s", startTimeout, b.String())
	}
}

// readStdout keeps draining the server's stdout, records it without API keys
// and sends the export block once all expected variables have been seen.
func (s *server) readStdout(r io.Reader, exports chan<- map[string]string) {
	want := []string{envServer, envAPIKey, envEnclave, envSSEKey, envCAFile}
	vars := make(map[string]string)
	sent := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if name, value, ok := parseExport(line); ok {
			vars[name] = value
		}
		if !strings.Contains(line, envAPIKey) {
			s.mu.Lock()
			s.stdout.WriteString(redact(line) + "\n")
			s.mu.Unlock()
		}
		if sent {
			continue
		}
		complete := true
		for _, name := range want {
			if _, ok := vars[name]; !ok {
				complete = false
			}
		}
		if complete {
			exports <- vars
			sent = true
		}
	}
}

// parseExport parses a line of the form `export NAME=value`.
func parseExport(line string) (name, value string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "export ")
	if !ok {
		return "", "", false
	}
	name, value, ok = strings.Cut(rest, "=")
	if !ok {
		return "", "", false
	}
	value = strings.TrimSpace(value)
	if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
		value = value[1 : len(value)-1]
	}
	return strings.TrimSpace(name), value, true
}

// newTestEnv builds the test environment and a SysAdmin client from the
// variables printed by the server.
func newTestEnv(vars map[string]string) (*testEnv, error) {
	key, err := mtls.ParsePrivateKey(vars[envAPIKey])
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", envAPIKey, err)
	}
	pemBytes, err := os.ReadFile(vars[envCAFile])
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", envCAFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%s=%s holds no PEM certificate", envCAFile, vars[envCAFile])
	}
	e := &testEnv{
		endpoint: vars[envServer],
		enclave:  vars[envEnclave],
		sseKey:   vars[envSSEKey],
		rootKey:  key,
		rootCAs:  pool,
	}
	if e.root, err = e.newClient(key); err != nil {
		return nil, err
	}
	return e, nil
}

// newClient returns an SDK client for the server that authenticates with key,
// configured like MinIO configures it (TLS >= 1.2, session cache).
func (e *testEnv) newClient(key mtls.PrivateKey) (*kms.Client, error) {
	return kms.NewClient(&kms.Config{
		Endpoints: []string{e.endpoint},
		APIKey:    key,
		TLS: &tls.Config{
			MinVersion:         tls.VersionTLS12,
			RootCAs:            e.rootCAs,
			ClientSessionCache: tls.NewLRUClientSessionCache(100),
		},
	})
}

// stop sends SIGTERM, waits a while, and kills the server if it is still up.
func (s *server) stop() {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(stopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	_ = s.stderr.Close()
}

// dumpLogs writes the server's stdout (without API keys) and the tail of its
// stderr to w, to explain failures.
func (s *server) dumpLogs(w io.Writer) {
	s.mu.Lock()
	out := s.stdout.String()
	s.mu.Unlock()
	errOut, _ := os.ReadFile(s.stderr.Name())
	const tail = 8 << 10
	if len(errOut) > tail {
		errOut = errOut[len(errOut)-tail:]
	}
	fmt.Fprintf(w, "--- kmsledger stdout ---\n%s--- kmsledger stderr (tail) ---\n%s\n", out, redact(string(errOut)))
}

// apiKeyPattern matches k1:/k2: API keys, which are secrets.
var apiKeyPattern = regexp.MustCompile(`\bk[12]:[A-Za-z0-9_-]+`)

// redact replaces API keys in s.
func redact(s string) string {
	return apiKeyPattern.ReplaceAllString(s, "k?:<redacted>")
}

// group runs named subtests of one behaviour group and prints a summary line
// with their counts when the parent test ends.
type group struct {
	t          *testing.T
	name       string
	pass, fail int
}

// newGroup starts a group of subtests under t.
func newGroup(t *testing.T, name string) *group {
	g := &group{t: t, name: name}
	t.Cleanup(func() {
		fmt.Printf("interop summary: %-14s %3d passed %3d failed\n", g.name, g.pass, g.fail)
	})
	return g
}

// run runs f as subtest name and counts the outcome.
func (g *group) run(name string, f func(t *testing.T)) {
	if g.t.Run(name, f) {
		g.pass++
	} else {
		g.fail++
	}
}

// ctx returns a context that ends with the test.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// uniqueName returns prefix followed by a random suffix; it is URL-safe.
func uniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// newEnclave creates a fresh enclave as SysAdmin and returns its name.
func newEnclave(t *testing.T, prefix string) string {
	t.Helper()
	name := uniqueName(prefix)
	if err := env.root.CreateEnclave(ctx(t), &kms.CreateEnclaveRequest{Name: name}); err != nil {
		t.Fatalf("CreateEnclave(%s): %v", name, err)
	}
	return name
}

// newKey generates a fresh Ed25519 API key.
func newKey(t *testing.T) mtls.PrivateKey {
	t.Helper()
	k, err := mtls.GenerateKeyEdDSA(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// clientFor returns an SDK client that authenticates with key.
func clientFor(t *testing.T, key mtls.PrivateKey) *kms.Client {
	t.Helper()
	c, err := env.newClient(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mustCreateKey creates a key as SysAdmin.
func mustCreateKey(t *testing.T, enclave, name string, typ kms.SecretKeyType) {
	t.Helper()
	if err := env.root.CreateKey(ctx(t), enclave, &kms.CreateKeyRequest{Name: name, Type: typ}); err != nil {
		t.Fatalf("CreateKey(%s/%s): %v", enclave, name, err)
	}
}

// wantErr fails the test unless errors.Is(err, target).
func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// noErr fails the test if err is not nil.
func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
