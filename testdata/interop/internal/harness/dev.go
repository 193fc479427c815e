package harness

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aead.dev/mtls"
	"github.com/minio/kms-go/kms"
)

// Environment variable names printed by `kmsledger server --dev`.
const (
	EnvServer  = "MINIO_KMS_SERVER"
	EnvAPIKey  = "MINIO_KMS_API_KEY"
	EnvEnclave = "MINIO_KMS_ENCLAVE"
	EnvSSEKey  = "MINIO_KMS_SSE_KEY"
	EnvCAFile  = "KMSLEDGER_CA_FILE"
)

// DevLogTail is how much of a dev server's log DumpLogs prints.
const DevLogTail = 16 << 10

// DevEnv is what a dev server printed, and a SysAdmin client for it.
type DevEnv struct {
	Endpoint string          // MINIO_KMS_SERVER, e.g. https://127.0.0.1:7373
	Enclave  string          // MINIO_KMS_ENCLAVE, created by --dev
	SSEKey   string          // MINIO_KMS_SSE_KEY
	CAFile   string          // KMSLEDGER_CA_FILE
	RootKey  mtls.PrivateKey // MINIO_KMS_API_KEY (SysAdmin): a secret
	RootCAs  *x509.CertPool  // the certificates of CAFile
	Root     *kms.Client     // authenticated with RootKey
}

// Client returns a kms SDK client for the server that authenticates with
// key, configured as MinIO configures it (TLS >= 1.2, session cache,
// trusting only RootCAs).
func (e *DevEnv) Client(key mtls.PrivateKey) (*kms.Client, error) {
	return kms.NewClient(&kms.Config{
		Endpoints: []string{e.Endpoint},
		APIKey:    key,
		TLS: &tls.Config{
			MinVersion:         tls.VersionTLS12,
			RootCAs:            e.RootCAs,
			ClientSessionCache: tls.NewLRUClientSessionCache(100),
		},
	})
}

// newDevEnv builds the environment and its SysAdmin client from the
// variables printed by the server.
func newDevEnv(vars map[string]string) (*DevEnv, error) {
	key, err := mtls.ParsePrivateKey(vars[EnvAPIKey])
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", EnvAPIKey, err)
	}
	pemBytes, err := os.ReadFile(vars[EnvCAFile])
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", EnvCAFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%s=%s holds no PEM certificate", EnvCAFile, vars[EnvCAFile])
	}
	e := &DevEnv{
		Endpoint: vars[EnvServer],
		Enclave:  vars[EnvEnclave],
		SSEKey:   vars[EnvSSEKey],
		CAFile:   vars[EnvCAFile],
		RootKey:  key,
		RootCAs:  pool,
	}
	if e.Root, err = e.Client(key); err != nil {
		return nil, err
	}
	return e, nil
}

// parseExport parses a line of the form `export NAME=value`; single or
// double quotes around the value are removed.
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

// exportCollector gathers `export NAME=value` lines and sends them, once,
// when every wanted name has been seen.
type exportCollector struct {
	want []string
	vars map[string]string
	sent bool
	out  chan map[string]string // buffered, capacity 1
}

// line is a ProcConfig.OnLine callback.
func (c *exportCollector) line(line string) {
	if name, value, ok := parseExport(line); ok {
		c.vars[name] = value
	}
	if c.sent {
		return
	}
	for _, name := range c.want {
		if _, ok := c.vars[name]; !ok {
			return
		}
	}
	c.out <- c.vars
	c.sent = true
}

// DevServer is a running `kmsledger server --dev` on a free loopback port.
type DevServer struct {
	Env  *DevEnv
	proc *Proc
}

// StartDev runs `kmsledger server --dev --address <free port> extraArgs...`
// with bin in dir (its log is dir/kmsledger.log) and waits, at most
// StartTimeout, until it has printed its export block.
func StartDev(bin, dir string, extraArgs ...string) (*DevServer, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	exports := &exportCollector{want: []string{EnvServer, EnvAPIKey, EnvEnclave, EnvSSEKey, EnvCAFile}, vars: map[string]string{}, out: make(chan map[string]string, 1)}
	p, err := Start(ProcConfig{
		Name:   "kmsledger",
		Bin:    bin,
		Args:   append([]string{"server", "--dev", "--address", addr}, extraArgs...),
		Dir:    dir,
		Log:    filepath.Join(dir, "kmsledger.log"),
		OnLine: exports.line,
	})
	if err != nil {
		return nil, err
	}
	s := &DevServer{proc: p}
	select {
	case vars := <-exports.out:
		if s.Env, err = newDevEnv(vars); err != nil {
			s.Stop()
			return nil, err
		}
		return s, nil
	case <-p.Done():
		var b strings.Builder
		s.DumpLogs(&b)
		return nil, fmt.Errorf("server exited before printing its environment (%v)\n%s", p.Err(), b.String())
	case <-time.After(StartTimeout):
		s.Stop()
		var b strings.Builder
		s.DumpLogs(&b)
		return nil, fmt.Errorf("server printed no complete environment within %v\n%s", StartTimeout, b.String())
	}
}

// Stop stops the server (SIGTERM, then SIGKILL); it is idempotent.
func (s *DevServer) Stop() { s.proc.Stop() }

// Pid is the server's process id.
func (s *DevServer) Pid() int { return s.proc.Pid() }

// DumpLogs writes the redacted tail of the server's log to w, to explain
// failures.
func (s *DevServer) DumpLogs(w io.Writer) {
	fmt.Fprintf(w, "--- kmsledger log (tail, redacted) ---\n%s\n", TailFile(s.proc.Log(), DevLogTail))
}

// RunMain is the body of a TestMain that runs every test of a package
// against one dev server: it builds cmd/kmsledger into a temporary
// directory, starts `kmsledger server --dev` with extraArgs, passes its
// environment to use (which must keep it for the tests), runs the tests,
// prints the server's log tail if they failed, stops the server and
// returns the exit code for os.Exit. label prefixes its messages.
func RunMain(m *testing.M, label string, use func(*DevEnv) error, extraArgs ...string) int {
	tmp, err := os.MkdirTemp("", "kmsledger-interop-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", label, err)
		return 1
	}
	defer os.RemoveAll(tmp)

	bin, err := BuildKMSLedger(tmp)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: build kmsledger: %v\n", label, err)
		return 1
	}
	srv, err := StartDev(bin, tmp, extraArgs...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: start kmsledger: %v\n", label, err)
		return 1
	}
	defer srv.Stop()
	if err := use(srv.Env); err != nil {
		fmt.Fprintf(os.Stderr, "%s: start kmsledger: %v\n", label, err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		srv.DumpLogs(os.Stderr)
	}
	return code
}
