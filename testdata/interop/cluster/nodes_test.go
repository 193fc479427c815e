package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"aead.dev/mtls"
	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kms"
)

// Log lines of a kmsledger node the tests follow.
const (
	lineServing  = "serving https://"
	lineWriter   = "ledger: this node now writes the stream"
	lineNoWriter = "ledger: another node now writes the stream"
	lineOpen     = `msg="ledger open"`
)

// node is one kmsledger server process of a cluster.
type node struct {
	name   string
	dir    string // data dir
	addr   string // HTTPS host:port
	listen string // route host:port ("" with --nats-url)
	log    string

	mu      sync.Mutex
	proc    *harness.Proc
	serving chan struct{} // closed when the current process printed lineServing
	writer  atomic.Bool   // the current process writes the LEDGER stream
	wroteAt atomic.Int64  // unix nanoseconds when its log last said it writes LEDGER
	killed  atomic.Bool   // SIGKILL was sent to the current process
	client  atomic.Value  // string: the ledger's client listener (tls://...)
}

// cluster is three (or n) kmsledger nodes sharing one HSM key and cluster
// key, a SysAdmin client for all endpoints, and an enclave.
type cluster struct {
	t       testing.TB
	dir     string
	hsmKey  string
	keyFile string
	routes  string
	extra   []string // extra server flags of every node
	nodes   []*node
	red     *harness.Redactor

	rootKey mtls.PrivateKey
	rootStr string // rootKey as printed (a secret)
	enclave string

	poolMu sync.Mutex
	pool   *x509.CertPool

	electedMu sync.Mutex
	elected   []election // streams' leader elections, as the nodes logged them
}

// run runs the kmsledger binary with args and the cluster's HSM key and
// returns its output.
func (c *cluster) run(args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "KMSLEDGER_HSM_KEY="+c.hsmKey)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// newCluster prepares n nodes (HSM key, cluster key, free ports) and starts
// them. With natsURLs the nodes use that external NATS (--nats-url) and no
// cluster key. extra flags go to every node.
func newCluster(t testing.TB, n int, natsURLs string, extra ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), extra: extra, red: &harness.Redactor{}}
	out, err := exec.Command(bin, "--soft-hsm").Output()
	if err != nil {
		t.Fatalf("kmsledger --soft-hsm: %v", err)
	}
	c.hsmKey = strings.TrimSpace(string(out))
	c.red.Add(c.hsmKey)
	if out, err := c.run("identity", "--hsm-key", c.hsmKey); err != nil {
		t.Fatalf("kmsledger identity: %v", err)
	} else {
		for line := range strings.Lines(out) {
			if k, ok := strings.CutPrefix(strings.TrimSpace(line), "Root API key:"); ok {
				c.rootStr = strings.TrimSpace(k)
				if c.rootKey, err = mtls.ParsePrivateKey(c.rootStr); err != nil {
					t.Fatalf("parse root API key: %v", err)
				}
			}
		}
		if c.rootKey == nil {
			t.Fatal("kmsledger identity printed no Root API key")
		}
	}
	var routes []string
	for i := range n {
		nd := &node{name: fmt.Sprintf("n%d", i+1), dir: filepath.Join(c.dir, fmt.Sprintf("d%d", i+1))}
		nd.log = filepath.Join(c.dir, nd.name+".log")
		if nd.addr, err = harness.FreeAddr(); err != nil {
			t.Fatal(err)
		}
		if natsURLs == "" && n > 1 {
			if nd.listen, err = harness.FreeAddr(); err != nil {
				t.Fatal(err)
			}
			routes = append(routes, "nats://"+nd.listen)
		}
		c.nodes = append(c.nodes, nd)
	}
	c.routes = strings.Join(routes, ",")
	if natsURLs != "" {
		c.extra = append(c.extra, "--nats-url", natsURLs)
	} else if n > 1 {
		c.keyFile = filepath.Join(c.dir, "cluster.key")
		if out, err := c.run("cluster", "init", "--out", c.keyFile); err != nil {
			t.Fatalf("kmsledger cluster init: %v\n%s", err, c.red.Redact(out))
		}
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			if p := nd.current(); p != nil {
				_ = syscall.Kill(p.Pid(), syscall.SIGCONT)
				p.Stop()
			}
		}
		// The logs of a failed test are kept, and every test's with
		// KMSLEDGER_CLUSTER_KEEP_LOGS=1.
		if t.Failed() || os.Getenv("KMSLEDGER_CLUSTER_KEEP_LOGS") == "1" {
			keep := filepath.Join(os.TempDir(), "kmsledger-cluster-logs", t.Name())
			_ = os.MkdirAll(keep, 0o700)
			for _, nd := range c.nodes {
				b, _ := os.ReadFile(nd.log)
				_ = os.WriteFile(filepath.Join(keep, nd.name+".log"), b, 0o600)
				t.Logf("--- %s log (tail, without route dial errors; whole log in %s) ---\n%s", nd.name, keep, tail(string(b), 8<<10))
			}
		}
	})
	for _, nd := range c.nodes {
		c.start(nd)
	}
	c.waitServing(c.nodes...)
	c.enclave = harness.UniqueName("ct")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.client(c.nodes...).CreateEnclave(ctx, &kms.CreateEnclaveRequest{Name: c.enclave}); err != nil {
		t.Fatalf("CreateEnclave: %v", err)
	}
	return c
}

// args is the server command line of nd.
func (c *cluster) args(nd *node) []string {
	a := []string{"server", nd.dir, "--address", nd.addr}
	if nd.listen != "" {
		a = append(a, "--node", nd.name, "--cluster-listen", nd.listen, "--routes", c.routes, "--cluster-key", c.keyFile)
	}
	return append(a, c.extra...)
}

// start starts nd's process (it must not be running); it does not wait.
func (c *cluster) start(nd *node) {
	c.t.Helper()
	serving := make(chan struct{})
	nd.mu.Lock()
	nd.serving = serving
	nd.writer.Store(false)
	nd.killed.Store(false)
	nd.mu.Unlock()
	var once sync.Once
	p, err := harness.Start(harness.ProcConfig{
		Name: "kmsledger " + nd.name,
		Bin:  bin,
		Args: c.args(nd),
		Env:  append(os.Environ(), "KMSLEDGER_HSM_KEY="+c.hsmKey),
		Dir:  c.dir,
		Log:  nd.log,
		Red:  c.red,
		OnLine: func(line string) {
			switch {
			case strings.Contains(line, lineServing):
				once.Do(func() { close(serving) })
			case strings.Contains(line, lineWriter) && strings.Contains(line, "stream=LEDGER"):
				nd.writer.Store(true)
				nd.wroteAt.Store(time.Now().UnixNano())
			case strings.Contains(line, lineNoWriter) && strings.Contains(line, "stream=LEDGER"):
				nd.writer.Store(false)
			case strings.Contains(line, lineElected):
				if _, rest, ok := strings.Cut(line, "stream="); ok {
					c.electedMu.Lock()
					c.elected = append(c.elected, election{strings.Fields(rest)[0], time.Now()})
					c.electedMu.Unlock()
				}
			case strings.Contains(line, lineOpen):
				if _, rest, ok := strings.Cut(line, "listen="); ok {
					nd.client.Store(strings.Fields(rest)[0])
				}
			}
		},
	})
	if err != nil {
		c.t.Fatalf("start %s: %v", nd.name, err)
	}
	nd.mu.Lock()
	nd.proc = p
	nd.mu.Unlock()
}

// current is nd's process, nil if never started.
func (nd *node) current() *harness.Proc {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.proc
}

// serves reports whether nd's current process printed its serving line
// and runs.
func (nd *node) serves() bool {
	if nd.killed.Load() {
		return false // killed, and perhaps not reaped yet
	}
	nd.mu.Lock()
	serving, p := nd.serving, nd.proc
	nd.mu.Unlock()
	select {
	case <-serving:
		return !p.Exited()
	default:
		return false
	}
}

// up reports whether nd's process runs.
func (nd *node) up() bool {
	p := nd.current()
	return p != nil && !p.Exited()
}

// waitServing waits until every node printed its serving line, and adds
// their certificates to the pool.
func (c *cluster) waitServing(nodes ...*node) {
	c.t.Helper()
	for _, nd := range nodes {
		nd.mu.Lock()
		serving, p := nd.serving, nd.proc
		nd.mu.Unlock()
		select {
		case <-serving:
		case <-p.Done():
			c.t.Fatalf("%s exited before serving: %v\n%s", nd.name, p.Err(), harness.TailFile(nd.log, 8<<10))
		case <-time.After(harness.StartTimeout):
			c.t.Fatalf("%s not serving within %v\n%s", nd.name, harness.StartTimeout, harness.TailFile(nd.log, 8<<10))
		}
		pem, err := os.ReadFile(filepath.Join(nd.dir, "tls", "cert.pem"))
		if err != nil {
			c.t.Fatal(err)
		}
		c.poolMu.Lock()
		if c.pool == nil {
			c.pool = x509.NewCertPool()
		}
		c.pool.AppendCertsFromPEM(pem)
		c.poolMu.Unlock()
	}
}

// kill sends SIGKILL to the nodes' processes, all at once, and waits until
// they are gone.
func (c *cluster) kill(nodes ...*node) {
	c.t.Helper()
	for _, nd := range nodes {
		nd.killed.Store(true) // before the signal: a call it cuts off is not counted
		if err := syscall.Kill(nd.current().Pid(), syscall.SIGKILL); err != nil {
			c.t.Fatalf("kill -9 %s: %v", nd.name, err)
		}
	}
	for _, nd := range nodes {
		<-nd.current().Done()
		nd.writer.Store(false)
	}
}

// restart starts a killed node again and waits until it serves.
func (c *cluster) restart(nd *node) {
	c.t.Helper()
	c.start(nd)
	c.waitServing(nd)
}

// signal sends sig to nd's process.
func (c *cluster) signal(nd *node, sig syscall.Signal) {
	c.t.Helper()
	if err := syscall.Kill(nd.current().Pid(), sig); err != nil {
		c.t.Fatalf("signal %v to %s: %v", sig, nd.name, err)
	}
}

// election is a node's log line saying a stream elected a leader.
type election struct {
	stream string
	at     time.Time
}

// lineElected is the log line of a stream's leader election.
const lineElected = "ledger: the stream elected a leader"

// lastElection returns the last time, after from and before to, that a
// node's log said a stream elected a leader (false if none did).
func (c *cluster) lastElection(from, to time.Time) (time.Time, bool) {
	c.electedMu.Lock()
	defer c.electedMu.Unlock()
	var last time.Time
	for _, e := range c.elected {
		if e.at.After(from) && e.at.Before(to) && e.at.After(last) {
			last = e.at
		}
	}
	return last, !last.IsZero()
}

// writerSince returns when a node first said it writes the LEDGER stream
// after t (false if none has yet).
func (c *cluster) writerSince(t time.Time) (time.Time, bool) {
	var first time.Time
	for _, nd := range c.nodes {
		if at := time.Unix(0, nd.wroteAt.Load()); nd.up() && nd.writer.Load() && at.After(t) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

// leader returns the running node whose log last said it writes the
// LEDGER stream, waiting up to 30 s for one.
func (c *cluster) leader() *node {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var found []*node
		for _, nd := range c.nodes {
			if nd.up() && nd.writer.Load() {
				found = append(found, nd)
			}
		}
		if len(found) == 1 {
			return found[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatal("no single node says it writes the LEDGER stream within 30s")
	return nil
}

// tlsConfig trusts every node's certificate, as MinIO's client would.
func (c *cluster) tlsConfig() *tls.Config {
	c.poolMu.Lock()
	defer c.poolMu.Unlock()
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.pool.Clone(), ClientSessionCache: tls.NewLRUClientSessionCache(100)}
}

// client returns a SysAdmin kms-go client with the endpoints of nodes.
func (c *cluster) client(nodes ...*node) *kms.Client {
	return c.clientAs(c.rootKey, nodes...)
}

// clientAs returns a kms-go client authenticated with key.
func (c *cluster) clientAs(key mtls.PrivateKey, nodes ...*node) *kms.Client {
	c.t.Helper()
	var eps []string
	for _, nd := range nodes {
		eps = append(eps, "https://"+nd.addr)
	}
	cl, err := kms.NewClient(&kms.Config{Endpoints: eps, APIKey: key, TLS: c.tlsConfig()})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// health returns the status code of GET path on nd (0 on a network error).
func (c *cluster) health(nd *node, path string) int {
	// Longer than the server's own bound (5 s): the test reads the
	// server's answer, not the client's timeout.
	hc := &http.Client{Timeout: 6 * time.Second, Transport: &http.Transport{TLSClientConfig: c.tlsConfig()}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("https://" + nd.addr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitHealth waits up to d until path answers 200 on nd and returns how
// long that took.
func (c *cluster) waitHealth(nd *node, path string, d time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < d {
		if c.health(nd, path) == http.StatusOK {
			return time.Since(start), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("%s %s not 200 within %v", nd.name, path, d)
}

// keyNames lists the names of the enclave's keys through nd.
func (c *cluster) keyNames(ctx context.Context, nd *node) (map[string]bool, error) {
	cl := c.client(nd)
	names := map[string]bool{}
	req := &kms.ListRequest{Enclave: c.enclave, Limit: 1000}
	for {
		page, err := cl.ListKeys(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, k := range page.Items {
			names[k.Name] = true
		}
		if page.ContinueAt == "" || len(page.Items) == 0 {
			return names, nil
		}
		req.ContinueAt = page.ContinueAt
	}
}

// roundTrip generates a data key with key through cl and decrypts it
// through dec.
func roundTrip(ctx context.Context, gen, dec *kms.Client, enclave, key string) error {
	g, err := gen.GenerateKey(ctx, enclave, &kms.GenerateKeyRequest{Name: key, Length: 32})
	if err != nil {
		return fmt.Errorf("GenerateKey: %w", err)
	}
	d, err := dec.Decrypt(ctx, enclave, &kms.DecryptRequest{Name: key, Ciphertext: g[0].Ciphertext})
	if err != nil {
		return fmt.Errorf("Decrypt: %w", err)
	}
	if string(d[0].Plaintext) != string(g[0].Plaintext) {
		return errors.New("Decrypt returned another plaintext")
	}
	return nil
}

// callCtx bounds one client call of a loop.
func callCtx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// figure prints a measured figure for the report.
func figure(t testing.TB, format string, args ...any) {
	t.Helper()
	s := fmt.Sprintf(format, args...)
	t.Log(s)
	fmt.Println("cluster figure:", s)
}

// auditEvents returns the output of `kmsledger audit events --json`
// through nd.
func (c *cluster) auditEvents(nd *node) (string, error) {
	cmd := exec.Command(bin, "audit", "events", "--json", "--server", nd.addr, "--ca", filepath.Join(nd.dir, "tls", "cert.pem"))
	cmd.Env = append(os.Environ(), "MINIO_KMS_API_KEY="+c.rootStr)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: audit events: %v", nd.name, err)
	}
	return string(out), nil
}

// auditCheck runs `kmsledger audit check` through nd: the node recomputes
// its hash chains and checks every signed checkpoint.
func (c *cluster) auditCheck(nd *node) {
	c.t.Helper()
	cmd := exec.Command(bin, "audit", "check", "--server", nd.addr, "--ca", filepath.Join(nd.dir, "tls", "cert.pem"))
	cmd.Env = append(os.Environ(), "MINIO_KMS_API_KEY="+c.rootStr)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK (") {
		c.t.Errorf("%s: audit check: %v\n%s", nd.name, err, out)
		return
	}
	figure(c.t, "audit check through %s: %s", nd.name, lastLine(string(out)))
}

// sameAuditEvents checks that `kmsledger audit events` lists the same
// events through every running node and that `kmsledger audit check`
// passes on each.
func (c *cluster) sameAuditEvents() {
	c.t.Helper()
	var first string
	var firstNode *node
	for _, nd := range c.nodes {
		if !nd.up() {
			continue
		}
		// Per node: the audit check of the node before takes a while,
		// and the cluster appends meanwhile (a checkpoint a minute).
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := c.auditEvents(nd)
			if err != nil {
				c.t.Fatal(err)
			}
			if firstNode == nil {
				first, firstNode = out, nd
				break
			}
			if out == first || onlyCheckpointsAfter(first, out) || onlyCheckpointsAfter(out, first) {
				break
			}
			if time.Now().After(deadline) {
				c.t.Errorf("audit events through %s (%d lines) differ from those through %s (%d lines); last lines:\n%s\n%s",
					nd.name, strings.Count(out, "\n"), firstNode.name, strings.Count(first, "\n"), lastLine(out), lastLine(first))
				break
			}
			time.Sleep(500 * time.Millisecond)
			// The cluster may have appended since (a checkpoint): list
			// through the first node again, so that both are compared
			// at the same head once appends stop.
			if first, err = c.auditEvents(firstNode); err != nil {
				c.t.Fatal(err)
			}
		}
		c.auditCheck(nd)
	}
	if first == "" {
		c.t.Error("audit events listed nothing")
	}
	figure(c.t, "audit events: the same %d lines through every running node", strings.Count(first, "\n"))
}

// onlyCheckpointsAfter reports whether long is short followed by
// checkpoints only: the cluster appends one a minute while the listings
// run (their own requests are audited), so two listings taken a moment
// apart may differ by those alone.
func onlyCheckpointsAfter(short, long string) bool {
	if len(long) <= len(short) || !strings.HasPrefix(long, short) {
		return false
	}
	for line := range strings.Lines(long[len(short):]) {
		if !strings.Contains(line, `"type":"system.checkpoint.v1"`) {
			return false
		}
	}
	return true
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// tail is the last n bytes of log without the routes' dial errors.
func tail(log string, n int) string {
	var b strings.Builder
	for line := range strings.Lines(log) {
		if !strings.Contains(line, "Error trying to connect to route") {
			b.WriteString(line)
		}
	}
	s := b.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

// testCtx returns a context that ends with the test or after 10 minutes
// (the tests outlive harness.Context's minute).
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
