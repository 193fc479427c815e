package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Time limits of process management. They bound waits; no assertion
// depends on how long something took.
const (
	StartTimeout = 90 * time.Second // until a process is ready
	StopTimeout  = 20 * time.Second // from SIGTERM until SIGKILL
)

// ErrExited is returned by WaitReady when the process exited before it was
// ready.
var ErrExited = errors.New("harness: process exited before it was ready")

// ProcConfig describes a child process to start.
type ProcConfig struct {
	Name string    // for messages, e.g. "kmsledger"
	Bin  string    // executable
	Args []string  // arguments
	Env  []string  // environment; nil inherits the test's
	Dir  string    // working directory; "" is the test's
	Log  string    // file the redacted output is appended to (created 0600)
	Red  *Redactor // nil: patterns only

	// Marker, if not empty, makes Ready close on the first output line
	// that contains it.
	Marker string
	// OnLine, if not nil, is called with every output line, unredacted,
	// in order, from one goroutine. It must not log the line.
	OnLine func(line string)
}

// Proc is a running child process in its own process group. Its combined
// stdout and stderr are redacted and appended to its log file.
type Proc struct {
	name  string
	log   string
	cmd   *exec.Cmd
	ready chan struct{} // closed on the first line containing the marker
	done  chan struct{} // closed when the process has exited
	err   error         // exit status, set before done is closed
}

// Start starts the process described by c. The caller must Stop it.
func Start(c ProcConfig) (*Proc, error) {
	if c.Red == nil {
		c.Red = &Redactor{}
	}
	logf, err := os.OpenFile(c.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	fmt.Fprintf(logf, "=== %s: start %s %s\n", time.Now().Format(time.TimeOnly), filepath.Base(c.Bin), c.Red.Redact(strings.Join(c.Args, " ")))

	p := &Proc{name: c.Name, log: c.Log, ready: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(c.Bin, c.Args...)
	p.cmd.Env, p.cmd.Dir = c.Env, c.Dir
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	// Own process group, so Stop reaches the whole group; Pdeathsig kills
	// the process if the test binary dies without running its clean-ups
	// (a go test timeout panics and exits).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", c.Name, err)
	}
	pw.Close()

	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			if c.OnLine != nil {
				c.OnLine(line)
			}
			fmt.Fprintln(logf, c.Red.Redact(line))
			if !seen && c.Marker != "" && strings.Contains(line, c.Marker) {
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
		fmt.Fprintf(logf, "=== %s: %s exited: %v\n", time.Now().Format(time.TimeOnly), c.Name, p.err)
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Log is the path of the process's log file.
func (p *Proc) Log() string { return p.log }

// Pid is the process id of the process.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited and its output is in the log.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit status; it is valid once Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// WaitReady waits until check succeeds (polled) or, if check is nil, until
// the marker line appeared, for at most StartTimeout. It returns an error
// wrapping ErrExited when the process exits first.
func (p *Proc) WaitReady(check func() error) error {
	deadline := time.After(StartTimeout)
	if check == nil {
		select {
		case <-p.ready:
			return nil
		case <-p.done:
			return fmt.Errorf("%s: %w (%v)", p.name, ErrExited, p.err)
		case <-deadline:
			return fmt.Errorf("%s printed no ready line within %v", p.name, StartTimeout)
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
			return fmt.Errorf("%s: %w (%v)", p.name, ErrExited, p.err)
		case <-deadline:
			return fmt.Errorf("%s not ready within %v: %w", p.name, StartTimeout, last)
		}
	}
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process group, waits up to StopTimeout, then
// kills the group. It is idempotent.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(StopTimeout):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Children that outlived the leader (none expected) go with the group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// TailFile returns the last n bytes of a file, starting at a line boundary,
// or the read error in parentheses.
func TailFile(path string, n int) string {
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
