package cluster

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kms"
)

// natsServerBin returns the stock nats-server: KMSLEDGER_NATS_SERVER_BIN,
// or the one .ci/nats-bins.sh installs (and builds if needed).
func natsServerBin(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("KMSLEDGER_NATS_SERVER_BIN"); b != "" {
		return b
	}
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", filepath.Join(root, ".ci", "nats-bins.sh")).Output()
	if err != nil {
		t.Fatalf(".ci/nats-bins.sh: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "nats-server")
}

// natsServer is one stock nats-server process.
type natsServer struct {
	name, client, route, monitor string
	proc                         *harness.Proc
}

// startNATS writes conf for a nats-server and starts it.
func startNATS(t *testing.T, bin, dir, name, conf string) *harness.Proc {
	t.Helper()
	path := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := harness.Start(harness.ProcConfig{Name: name, Bin: bin, Args: []string{"-c", path}, Dir: dir, Log: filepath.Join(dir, name+".log"), Marker: "Server is ready"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if err := p.WaitReady(nil); err != nil {
		t.Fatalf("%v\n%s", err, harness.TailFile(p.Log(), 8<<10))
	}
	return p
}

// natsCluster starts three stock nats-server processes as in the spec's
// test recipe (jetstream with sync_interval: always, one cluster, the same
// routes everywhere) and returns their client URLs.
func natsCluster(t *testing.T) []*natsServer {
	t.Helper()
	bin := natsServerBin(t)
	dir := t.TempDir()
	var ss []*natsServer
	var routes []string
	for i := range 3 {
		s := &natsServer{name: fmt.Sprintf("p%d", i+1)}
		for _, a := range []*string{&s.client, &s.route, &s.monitor} {
			addr, err := harness.FreeAddr()
			if err != nil {
				t.Fatal(err)
			}
			*a = addr
		}
		routes = append(routes, `"nats://`+s.route+`"`)
		ss = append(ss, s)
	}
	for _, s := range ss {
		conf := fmt.Sprintf(`server_name: %s
listen: %s
http: %s
jetstream { store_dir: %q, sync_interval: always }
cluster { name: kmsp, listen: %s, routes: [%s] }
`, s.name, s.client, s.monitor, filepath.Join(dir, s.name), s.route, strings.Join(routes, ", "))
		s.proc = startNATS(t, bin, dir, s.name, conf)
	}
	return ss
}

// TestClusterExternalNATS runs three kmsledger nodes on an external
// cluster of three stock nats-server processes (--nats-url, no cluster
// key): a key created through node 1 serves GenerateKey through node 2
// and Decrypt through node 3 right away, and kms-go with all endpoints
// keeps working while one kmsledger node is killed and restarted.
func TestClusterExternalNATS(t *testing.T) {
	ss := natsCluster(t)
	var urls []string
	for _, s := range ss {
		urls = append(urls, "nats://"+s.client)
	}
	c := newCluster(t, 3, strings.Join(urls, ","))
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	ctx := testCtx(t)
	key := harness.UniqueName("k")
	if err := c.client(n1).CreateKey(ctx, c.enclave, &kms.CreateKeyRequest{Name: key}); err != nil {
		t.Fatalf("CreateKey through n1: %v", err)
	}
	if err := roundTrip(ctx, c.client(n2), c.client(n3), c.enclave, key); err != nil {
		t.Fatalf("right after CreateKey through n1: GenerateKey through n2, Decrypt through n3: %v", err)
	}
	stop := make(chan struct{})
	loop := startCryptoLoop(c.client(c.nodes...), c.enclave, key, stop)
	time.Sleep(2 * time.Second)
	c.kill(n2)
	time.Sleep(3 * time.Second)
	c.restart(n2)
	if _, err := c.waitHealth(n2, "/v1/health/ready", 60*time.Second); err != nil {
		t.Error(err)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	loop.check(t, "external NATS, kms-go with all endpoints, one kmsledger node killed", 1)
	name := harness.UniqueName("after")
	if err := c.client(n2).CreateKey(ctx, c.enclave, &kms.CreateKeyRequest{Name: name}); err != nil {
		t.Errorf("CreateKey through the restarted n2: %v", err)
	}
	if err := roundTrip(ctx, c.client(n3), c.client(n1), c.enclave, name); err != nil {
		t.Errorf("GenerateKey through n3, Decrypt through n1: %v", err)
	}
	c.sameAuditEvents()
}

// TestClusterStrangers checks that a stock nats-server without the
// cluster's credential, configured with a route to a node's route port,
// does not become a route peer, and that a NATS client without it cannot
// use a node's client port (plain TCP, or TLS without a certificate).
func TestClusterStrangers(t *testing.T) {
	c := newCluster(t, 3, "")
	n1 := c.nodes[0]
	bin := natsServerBin(t)
	dir := t.TempDir()
	var client, route, monitor string
	for _, a := range []*string{&client, &route, &monitor} {
		addr, err := harness.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		*a = addr
	}
	conf := fmt.Sprintf(`server_name: stranger
listen: %s
http: %s
jetstream { store_dir: %q }
cluster { name: kmsledger, listen: %s, routes: ["nats://%s"] }
`, client, monitor, filepath.Join(dir, "js"), route, n1.listen)
	stranger := startNATS(t, bin, dir, "stranger", conf)
	time.Sleep(10 * time.Second)

	// The stranger has no route.
	resp, err := http.Get("http://" + monitor + "/routez")
	if err != nil {
		t.Fatal(err)
	}
	var rz struct {
		NumRoutes int `json:"num_routes"`
	}
	err = json.NewDecoder(resp.Body).Decode(&rz)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if rz.NumRoutes != 0 {
		t.Errorf("the stranger nats-server has %d routes to the cluster, want 0\n%s", rz.NumRoutes, harness.TailFile(stranger.Log(), 4<<10))
	}
	for _, nd := range c.nodes {
		b, _ := os.ReadFile(nd.log)
		for line := range strings.Lines(string(b)) {
			if strings.Contains(line, "stranger") && strings.Contains(line, "Route connection created") {
				t.Errorf("%s accepted a route from the stranger: %s", nd.name, line)
			}
		}
	}
	figure(t, "stranger nats-server routed to %s's route port: %d routes after 10s", n1.name, rz.NumRoutes)

	// The node's client port.
	v, _ := n1.client.Load().(string)
	addr, ok := strings.CutPrefix(v, "tls://")
	if !ok {
		t.Fatalf(`no "ledger open ... listen=tls://..." line in %s's log (got %q)`, n1.name, v)
	}
	if h, _, _ := net.SplitHostPort(addr); h != "127.0.0.1" {
		t.Errorf("the client port of %s listens on %s, want 127.0.0.1", n1.name, addr)
	}
	plain := natsPing(t, addr, nil)
	if strings.Contains(plain, "PONG") {
		t.Errorf("a plain NATS client got PONG from %s's client port: %q", n1.name, plain)
	}
	noCert := natsPing(t, addr, &tls.Config{InsecureSkipVerify: true})
	if strings.Contains(noCert, "PONG") {
		t.Errorf("a NATS client with TLS but no certificate got PONG from %s's client port: %q", n1.name, noCert)
	}
	t.Logf("plain client on %s: %q", addr, lastLine(plain))
	t.Logf("TLS client without a certificate on %s: %q", addr, lastLine(noCert))
}

// natsPing connects to a NATS client port (over TLS when cfg is not nil,
// after the server's INFO as NATS does), sends CONNECT with a guessed user
// and PING, and returns everything the server answered within 3 s.
func natsPing(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	var got strings.Builder
	r := bufio.NewReader(conn)
	info, _ := r.ReadString('\n')
	got.WriteString(info)
	var rw interface {
		Write([]byte) (int, error)
		Read([]byte) (int, error)
	} = conn
	if cfg != nil {
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			return got.String() + "handshake: " + err.Error()
		}
		rw, r = tc, bufio.NewReader(tc)
	}
	if _, err := rw.Write([]byte("CONNECT {\"verbose\":false,\"user\":\"kmsledger\",\"pass\":\"guess\"}\r\nPING\r\n")); err != nil {
		return got.String() + "write: " + err.Error()
	}
	for {
		line, err := r.ReadString('\n')
		got.WriteString(line)
		if err != nil {
			got.WriteString("read: " + err.Error())
			return got.String()
		}
	}
}
