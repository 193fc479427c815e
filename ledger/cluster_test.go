package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kmsledger/kmsledger/ledger/porttest"
)

// testLog is a node's logger: to stderr, at debug level (the embedded
// server's Raft lines included), with KMSLEDGER_TEST_LOG=1; else none.
func testLog(name string) *slog.Logger {
	if os.Getenv("KMSLEDGER_TEST_LOG") != "1" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

// testCluster is three Stores of one embedded cluster in this process.
type testCluster struct {
	secret []byte
	routes []string
	ports  []int
	dirs   []string
	stores []*Store
}

func clusterConfig(tc *testCluster, i int) Config {
	return Config{Dir: tc.dirs[i], Logger: testLog(fmt.Sprintf("n%d", i+1)), Cluster: &ClusterConfig{
		Node: fmt.Sprintf("n%d", i+1), Listen: fmt.Sprintf("127.0.0.1:%d", tc.ports[i]),
		Routes: tc.routes, Secret: tc.secret,
	}}
}

// startCluster opens three Stores at once (a lone node waits for a
// majority) and closes them in t.Cleanup.
func startCluster(t *testing.T) *testCluster {
	t.Helper()
	tc := &testCluster{secret: make([]byte, ClusterSecretLen), ports: porttest.Ports(t, 3)}
	rand.Read(tc.secret)
	for i := range 3 {
		tc.routes = append(tc.routes, fmt.Sprintf("nats://127.0.0.1:%d", tc.ports[i]))
		tc.dirs = append(tc.dirs, t.TempDir())
	}
	tc.stores = make([]*Store, 3)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			tc.stores[i], errs[i] = Open(ctx, clusterConfig(tc, i))
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, s := range tc.stores {
			if s != nil {
				s.Close()
			}
		}
	})
	// Every node's error: one node that fails early keeps the others
	// from electing the cluster's first meta leader.
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open(node %d) err = %v", i+1, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return tc
}

// checkPlainAudit: audit batches stay plain JSON lines in a cluster,
// which a node of an earlier version still reads (audit_compress.go).
func checkPlainAudit(t *testing.T, tc *testCluster) {
	t.Helper()
	ctx := context.Background()
	a := tc.stores[1].NewAuditor(AuditConfig{Sync: true})
	if err := a.Record(ctx, auditRecord(1)); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if m, err := tc.stores[0].audit.GetMsg(ctx, 1); err != nil || m.Header.Get(TypeHeader) != TypeAuditBatch {
		t.Fatalf("the cluster's first AUDIT message: %v; want a %s batch", err, TypeAuditBatch)
	}
}

// checkClusterWindow: a cluster resends a message whose outcome is
// unknown, so its duplicates window is the long one, not a single node's.
func checkClusterWindow(t *testing.T, tc *testCluster) {
	t.Helper()
	for i, s := range tc.stores {
		if s.dupWindow != duplicateWindow || s.resendHorizon != resendHorizon {
			t.Fatalf("node %d: duplicates window %v, resend horizon %v; want %v and %v", i+1, s.dupWindow, s.resendHorizon, duplicateWindow, resendHorizon)
		}
	}
	info, err := tc.stores[0].ledger.Info(context.Background())
	if err != nil || info.Config.Duplicates != duplicateWindow {
		t.Fatalf("the cluster's LEDGER: %v, window %v; want %v", err, info.Config.Duplicates, duplicateWindow)
	}
}

func TestClusterReplicatesAndEveryNodeAppends(t *testing.T) {
	tc := startCluster(t)
	ctx := context.Background()
	for i, s := range tc.stores {
		if !s.Clustered() || s.Replicas() != 3 {
			t.Fatalf("node %d: Clustered %v Replicas %d, want true 3", i+1, s.Clustered(), s.Replicas())
		}
	}
	checkClusterWindow(t, tc)
	checkPlainAudit(t, tc)
	// Appends from every node at once: one hash chain, no lost append.
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i, s := range tc.stores {
		wg.Go(func() {
			for j := range 10 {
				ev := testEvent(KeySubject("enc", fmt.Sprintf("k%d-%d", i, j)), rand.Text())
				if _, _, err := s.Append(ctx, ev, Expect{}); err != nil {
					errs <- fmt.Errorf("node %d append %d: %w", i+1, j, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, s := range tc.stores {
		head, err := s.Head(ctx)
		if err != nil || head != 30 {
			t.Fatalf("node %d Head() = %d, %v; want 30", i+1, head, err)
		}
		rep, err := s.Verify(ctx, VerifyOptions{})
		if err != nil {
			t.Fatalf("node %d Verify() err = %v", i+1, err)
		}
		if rep.Ledger.Last != 30 {
			t.Errorf("node %d verified up to %d, want 30", i+1, rep.Ledger.Last)
		}
	}
	if err := tc.stores[2].WriteReady(ctx); err != nil {
		t.Errorf("WriteReady() before the race err = %v, want nil", err)
	}
	// Racing creators of one name on different nodes: exactly one wins.
	var wins, conflicts int
	var mu sync.Mutex
	for _, s := range tc.stores {
		wg.Go(func() {
			_, _, err := s.Append(ctx, testEvent(KeySubject("enc", "raced"), rand.Text()), Expect{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ErrConflict):
				conflicts++
			default:
				t.Errorf("racing append err = %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != 2 {
		t.Errorf("racing creators: %d wins, %d conflicts; want 1 and 2", wins, conflicts)
	}
	if err := tc.stores[2].WriteReady(ctx); err != nil {
		t.Errorf("WriteReady() after the race err = %v, want nil", err)
	}
	st, err := tc.stores[1].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	up, down := st.Nodes()
	if len(up) != 3 || len(down) != 0 {
		t.Errorf("Status nodes up %v down %v, want 3 up", up, down)
	}
}

// TestClusterEraseReachesEveryRaftLog stores material through one node,
// erases it through another, and checks that no data directory holds
// its bytes afterwards: not the stream blocks, not any node's Raft log.
func TestClusterEraseReachesEveryRaftLog(t *testing.T) {
	tc := startCluster(t)
	ctx := context.Background()
	for _, s := range tc.stores {
		s.StartErasureWatch(t.Context(), 200*time.Millisecond)
	}
	marker := []byte("MATERIAL-" + rand.Text() + "-END")
	ref := SecretRef("enc", "k", 1)
	if err := tc.stores[0].PutSecret(ctx, ref, marker); err != nil {
		t.Fatal(err)
	}
	got, err := tc.stores[2].GetSecret(ctx, ref)
	if err != nil || !bytes.Equal(got, marker) {
		t.Fatalf("GetSecret on node 3 = %q, %v", got, err)
	}
	waitFor(t, 10*time.Second, func() bool { return dirsHolding(t, tc.dirs, marker) == 3 })
	if err := tc.stores[1].EraseSecret(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.stores[0].GetSecret(ctx, ref); !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("GetSecret after erase err = %v, want ErrSecretNotFound", err)
	}
	waitFor(t, 15*time.Second, func() bool { return dirsHolding(t, tc.dirs, marker) == 0 })
}

// dirsHolding counts the directories with a file that contains b.
func dirsHolding(t *testing.T, dirs []string, b []byte) int {
	n := 0
	for _, d := range dirs {
		found := false
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || found {
				return nil
			}
			data, err := os.ReadFile(p)
			if err == nil && bytes.Contains(data, b) {
				found = true
			}
			return nil
		})
		if found {
			n++
		}
	}
	return n
}

// TestClusterRoutesRefuseStrangers: a server without the cluster secret
// cannot make a route, and a NATS client without it cannot connect.
func TestClusterRoutesRefuseStrangers(t *testing.T) {
	tc := startCluster(t)
	// A client of the node's client port without credentials.
	url := tc.stores[0].ClientURL()
	if nc, err := nats.Connect(url, nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatalf("client without credentials connected to %s", url)
	}
	// With the password but no certificate of the cluster CA.
	cred, _ := newClusterCred(tc.secret, "x")
	if nc, err := nats.Connect(url, nats.UserInfo(clientUser, cred.clientPassword), nats.Timeout(2*time.Second),
		nats.Secure(&tls.Config{InsecureSkipVerify: true})); err == nil {
		nc.Close()
		t.Fatalf("client without a cluster certificate connected")
	}
	// A node with another secret dials the routes: it never becomes a
	// peer (its own meta group never gets a leader, so Open times out).
	other := make([]byte, ClusterSecretLen)
	rand.Read(other)
	port := porttest.Ports(t, 1)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{Dir: t.TempDir(), Cluster: &ClusterConfig{Node: "rogue",
		Listen: fmt.Sprintf("127.0.0.1:%d", port), Routes: tc.routes, Secret: other}})
	if err == nil {
		s.Close()
		t.Fatal("a node with another secret opened its streams in the cluster")
	}
	st, err := tc.stores[0].Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ss := range st.Streams {
		for _, p := range ss.Peers {
			if strings.Contains(p.Name, "rogue") {
				t.Fatalf("rogue node in the replica set of %s", ss.Name)
			}
		}
	}
	if n := tc.stores[0].ns.NumRoutes(); n == 0 {
		t.Fatal("node 1 has no routes")
	}
	for _, r := range tc.stores[0].ns.JetStreamClusterPeers() {
		if r == "rogue" {
			t.Fatal("rogue node in the meta group")
		}
	}
}

// TestClusterForwardsLargeBatch: a batch of MaxBatch events of 1 KiB
// appended through a node that does not write LEDGER is forwarded to the
// writer whole, and stored atomically.
func TestClusterForwardsLargeBatch(t *testing.T) {
	tc := startCluster(t)
	ctx := context.Background()
	var s *Store
	waitFor(t, 10*time.Second, func() bool {
		leaders := 0
		for _, st := range tc.stores {
			if st.IsLeader() {
				leaders++
			} else {
				s = st
			}
		}
		return leaders == 1
	})
	pad := strings.Repeat("x", 1024)
	evs := make([]Event, MaxBatch)
	xs := make([]Expect, MaxBatch)
	for i := range evs {
		evs[i] = testEvent(KeySubject("enc", fmt.Sprintf("b%d", i)), rand.Text())
		evs[i].Payload = []byte(fmt.Sprintf(`{"pad":%q}`, pad))
	}
	first, last, err := s.AppendBatch(ctx, evs, xs)
	if err != nil {
		t.Fatalf("AppendBatch through a forwarding node err = %v", err)
	}
	if last-first+1 != MaxBatch {
		t.Fatalf("stored %d..%d, want %d events", first, last, MaxBatch)
	}
	if _, err := tc.stores[0].Verify(ctx, VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestOpenPortTaken: a node whose route or client port is held by
// another process fails its start at once with the reason, instead of
// waiting out the start-up time without ever being reachable, and leaves
// its directory free for the next start.
func TestOpenPortTaken(t *testing.T) {
	secret := make([]byte, ClusterSecretLen)
	rand.Read(secret)
	for _, which := range []string{"route", "client"} {
		t.Run(which, func(t *testing.T) {
			held, err := net.Listen("tcp", porttest.Addr(t))
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			dir := t.TempDir()
			ports := porttest.Ports(t, 2)
			cfg := func(route, client string) Config {
				return Config{Dir: dir, Logger: testLog(which), Listen: client, Cluster: &ClusterConfig{
					Node: "n1", Listen: route, Routes: []string{"nats://" + route}, Secret: secret}}
			}
			free := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
			bad := cfg(held.Addr().String(), free(1))
			if which == "client" {
				bad = cfg(free(0), held.Addr().String())
			}
			// The deadline is the start-up's; without the fix the error
			// would come only then, and say nothing of the port.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := Open(ctx, bad)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on a port another process holds")
			}
			if !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), held.Addr().String()[len("127.0.0.1:"):]) {
				t.Fatalf("Open err = %v; want the port %s and its reason", err, held.Addr())
			}
			// The failed start released the directory: a single node opens it.
			s, err = Open(ctx, Config{Dir: dir})
			if err != nil {
				t.Fatalf("Open after the failed start: %v", err)
			}
			s.Close()
		})
	}
}
