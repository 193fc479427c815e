package minio

import (
	"bufio"
	"context"
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
)

// mainModule is the module path of the repository under test.
const mainModule = "github.com/kmsledger/kmsledger"

// Time limits of process management. They bound waits; no assertion depends
// on how long something took.
const (
	buildTimeout = 5 * time.Minute
	startTimeout = 90 * time.Second
	stopTimeout  = 20 * time.Second
	cmdTimeout   = 2 * time.Minute
	logTail      = 6 << 10
)

var errExited = errors.New("process exited before it was ready")

// redactor removes secrets from text: API keys and HSM keys by pattern, and
// literal secrets (passwords, static keys) registered by the test.
type redactor struct {
	mu       sync.Mutex
	literals []string
}

// secretPattern matches kmsledger/kms-go API keys and software HSM keys.
var secretPattern = regexp.MustCompile(`\bk[12]:[A-Za-z0-9_+/=-]+|\bhsm:[a-z0-9]+:[A-Za-z0-9_+/=-]+`)

// add registers literal secrets.
func (r *redactor) add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if s != "" {
			r.literals = append(r.literals, s)
		}
	}
}

// redact returns s without secrets.
func (r *redactor) redact(s string) string {
	s = secretPattern.ReplaceAllString(s, "<redacted>")
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, lit := range r.literals {
		s = strings.ReplaceAll(s, lit, "<redacted>")
	}
	return s
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

// buildKMSLedger compiles cmd/kmsledger into dir and returns the binary.
func buildKMSLedger(dir string) (string, error) {
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

// requireBinary returns the executable named by the environment variable, or
// fails the test saying how to get it.
func requireBinary(t *testing.T, envVar string) string {
	t.Helper()
	path := os.Getenv(envVar)
	if path == "" {
		t.Fatalf("%s is not set: run testdata/interop/run.sh, which installs the pinned MinIO and mc with .ci/minio-bins.sh and sets it", envVar)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s=%s is not an executable file (%v): run .ci/minio-bins.sh", envVar, path, err)
	}
	return path
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// baseEnv is the test's environment without any MINIO_, MC_ or KMSLEDGER_
// variable, so that child processes see only what a step sets.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MINIO_") || strings.HasPrefix(kv, "MC_") || strings.HasPrefix(kv, "KMSLEDGER_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// proc is a running server process in its own process group. Its combined
// output is redacted and appended to a log file.
type proc struct {
	name  string
	cmd   *exec.Cmd
	ready chan struct{} // closed on the first output line containing the marker
	done  chan struct{} // closed when the process has exited
	err   error         // exit status, set before done is closed
}

// startProc starts bin with args and env; output goes to logPath. If marker
// is not empty, ready is closed when a line of output contains it.
func startProc(t *testing.T, red *redactor, name, logPath, marker string, env []string, bin string, args ...string) (*proc, error) {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	fmt.Fprintf(logf, "=== %s: start %s %s\n", time.Now().Format(time.TimeOnly), filepath.Base(bin), red.redact(strings.Join(args, " ")))

	p := &proc{name: name, ready: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	// Own process group, so stop reaches the whole group; Pdeathsig kills
	// the server if the test binary dies without running its clean-ups
	// (a go test timeout panics and exits).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	pw.Close()
	t.Cleanup(p.stop)

	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, red.redact(line))
			if !seen && marker != "" && strings.Contains(line, marker) {
				seen = true
				close(p.ready)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		p.err = p.cmd.Wait()
		<-copied
		pr.Close()
		fmt.Fprintf(logf, "=== %s: %s exited: %v\n", time.Now().Format(time.TimeOnly), name, p.err)
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// waitReady waits until check succeeds (polled) or, if check is nil, until
// the marker line appeared. It fails early when the process exits.
func (p *proc) waitReady(check func() error) error {
	deadline := time.After(startTimeout)
	if check == nil {
		select {
		case <-p.ready:
			return nil
		case <-p.done:
			return fmt.Errorf("%s: %w (%v)", p.name, errExited, p.err)
		case <-deadline:
			return fmt.Errorf("%s printed no ready line within %v", p.name, startTimeout)
		}
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		select {
		case <-tick.C:
		case <-p.done:
			return fmt.Errorf("%s: %w (%v)", p.name, errExited, p.err)
		case <-deadline:
			return fmt.Errorf("%s not ready within %v: %w", p.name, startTimeout, last)
		}
	}
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, waits, then kills the group.
// It is idempotent.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Children that outlived the leader (none expected) go with the group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// tailFile returns the last n bytes of a file, starting at a line boundary.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
		if i := strings.IndexByte(string(b), '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
