package kesinterop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
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
	"github.com/minio/kms-go/kes"
	"github.com/minio/kms-go/kms"
)

// mainModule is the module path of the repository under test.
const mainModule = "github.com/kmsledger/kmsledger"

// kesEnclave is the enclave KES clients act in (`--kes-enclave`); --dev
// creates it.
const kesEnclave = "minio"

// Time limits for setting up the server under test.
const (
	buildTimeout = 5 * time.Minute
	startTimeout = 90 * time.Second
	stopTimeout  = 15 * time.Second
)

// testEnv is the running server: its KES endpoint (the same listener as
// the kms API), the CA to trust, and a root kms client for set-up.
type testEnv struct {
	endpoint string
	rootCAs  *x509.CertPool
	root     *kms.Client
}

// env is set once by TestMain before any test runs and never changed.
var env *testEnv

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "kmsledger-kes-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "kes interop:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	bin, err := buildServer(tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kes interop: build kmsledger:", err)
		return 1
	}
	srv, err := startServer(bin, tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kes interop: start kmsledger:", err)
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

// buildServer compiles cmd/kmsledger of the enclosing repository (the
// directory above whose go.mod declares mainModule) into dir.
func buildServer(dir string) (string, error) {
	root, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(root, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module "+mainModule+"\n")) {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", fmt.Errorf("no go.mod declaring %s above the working directory", mainModule)
		}
		root = parent
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

// server is a running `kmsledger server --dev --kes-enclave minio`.
type server struct {
	cmd    *exec.Cmd
	env    *testEnv
	done   chan struct{}
	mu     sync.Mutex
	stdout bytes.Buffer // without API keys
	stderr *os.File
}

func startServer(bin, dir string) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	stderr, err := os.Create(filepath.Join(dir, "server.stderr"))
	if err != nil {
		return nil, err
	}
	s := &server{done: make(chan struct{}), stderr: stderr}
	s.cmd = exec.Command(bin, "server", "--dev", "--address", addr, "--kes-enclave", kesEnclave)
	s.cmd.Dir, s.cmd.Stderr = dir, stderr
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
		if s.env, err = newTestEnv(vars); err != nil {
			s.stop()
			return nil, err
		}
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("server exited before printing its environment (%v)", s.cmd.ProcessState)
	case <-time.After(startTimeout):
		s.stop()
		return nil, fmt.Errorf("server printed no environment within %v", startTimeout)
	}
}

// readStdout drains stdout, keeps it without API keys, and sends the
// `export NAME=value` lines once the ones needed have been seen.
func (s *server) readStdout(r io.Reader, exports chan<- map[string]string) {
	want := []string{"MINIO_KMS_SERVER", "MINIO_KMS_API_KEY", "MINIO_KMS_ENCLAVE", "KMSLEDGER_CA_FILE"}
	vars := map[string]string{}
	sent := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "export "); ok {
			if name, value, ok := strings.Cut(rest, "="); ok {
				vars[name] = strings.Trim(value, `"'`)
			}
		}
		s.mu.Lock()
		s.stdout.WriteString(redact(line) + "\n")
		s.mu.Unlock()
		complete := true
		for _, n := range want {
			_, ok := vars[n]
			complete = complete && ok
		}
		if complete && !sent {
			exports <- vars
			sent = true
		}
	}
}

func newTestEnv(vars map[string]string) (*testEnv, error) {
	if vars["MINIO_KMS_ENCLAVE"] != kesEnclave {
		return nil, fmt.Errorf("--dev enclave is %q, want %q", vars["MINIO_KMS_ENCLAVE"], kesEnclave)
	}
	key, err := mtls.ParsePrivateKey(vars["MINIO_KMS_API_KEY"])
	if err != nil {
		return nil, fmt.Errorf("parse MINIO_KMS_API_KEY: %w", err)
	}
	pemBytes, err := os.ReadFile(vars["KMSLEDGER_CA_FILE"])
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%s holds no PEM certificate", vars["KMSLEDGER_CA_FILE"])
	}
	root, err := kms.NewClient(&kms.Config{
		Endpoints: []string{vars["MINIO_KMS_SERVER"]},
		APIKey:    key,
		TLS:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool},
	})
	if err != nil {
		return nil, err
	}
	return &testEnv{endpoint: vars["MINIO_KMS_SERVER"], rootCAs: pool, root: root}, nil
}

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

// apiKeyPattern matches k1:/k2:/kes:v1: API keys, which are secrets.
var apiKeyPattern = regexp.MustCompile(`\b(k[12]:[A-Za-z0-9_-]+|kes:v1:[A-Za-z0-9+/=]+)`)

func redact(s string) string { return apiKeyPattern.ReplaceAllString(s, "<redacted API key>") }

// ctx returns a context that ends with the test.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// uniqueName returns prefix and a random suffix.
func uniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// h1 converts a KES identity (hex SHA-256 of the SPKI) to the kmsledger
// identity of the same hash.
func h1(t *testing.T, id kes.Identity) mtls.Identity {
	t.Helper()
	b, err := hex.DecodeString(id.String())
	if err != nil {
		t.Fatalf("KES identity %q: %v", id, err)
	}
	m, err := mtls.ParseIdentity("h1:" + base64.RawURLEncoding.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// addIdentity adds a KES identity to the enclave through the kms API, as
// Admin, or as a User with policy.
func addIdentity(t *testing.T, id kes.Identity, priv kms.Privilege, policy string) {
	t.Helper()
	if err := env.root.CreateIdentity(ctx(t), kesEnclave, &kms.CreateIdentityRequest{Identity: h1(t, id), Privilege: priv}); err != nil {
		t.Fatalf("CreateIdentity(%s): %v", id, err)
	}
	if policy == "" {
		return
	}
	if err := env.root.AssignPolicy(ctx(t), kesEnclave, &kms.AssignPolicyRequest{Identity: h1(t, id), Policy: policy}); err != nil {
		t.Fatalf("AssignPolicy(%s, %s): %v", id, policy, err)
	}
}

// clientWithCert returns a KES SDK client presenting cert, configured as
// MinIO configures it (trusting only the server's CA).
func clientWithCert(cert tls.Certificate) *kes.Client {
	return kes.NewClientWithConfig(env.endpoint, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      env.rootCAs,
		Certificates: []tls.Certificate{cert},
	})
}

// newAPIKeyClient makes a fresh kes:v1 API key and returns a client for it
// (the certificate the SDK derives from the key, as MINIO_KMS_KES_API_KEY
// does) and its identity. The key round-trips through its text form.
func newAPIKeyClient(t *testing.T) (*kes.Client, kes.Identity) {
	t.Helper()
	k, err := kes.GenerateAPIKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := kes.ParseAPIKey(k.String())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := kes.GenerateCertificate(key)
	if err != nil {
		t.Fatal(err)
	}
	return clientWithCert(cert), key.Identity()
}

// adminClient returns a client whose fresh identity is an Admin of the
// enclave.
func adminClient(t *testing.T) (*kes.Client, kes.Identity) {
	t.Helper()
	c, id := newAPIKeyClient(t)
	addIdentity(t, id, kms.Admin, "")
	return c, id
}
