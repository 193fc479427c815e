package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"

	"github.com/kmsledger/kmsledger/ledger/porttest"
)

// testLog is a node's logger: to stderr with KMSLEDGER_TEST_LOG=1, else
// none.
func testLog(name string) *slog.Logger {
	if os.Getenv("KMSLEDGER_TEST_LOG") != "1" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

// openCluster opens three nodes of a new cluster at once, through
// node.Open as the server does, with the cluster key file made by
// node.NewClusterKey under the same HSM.
func openCluster(t *testing.T, hsms []config.HSM) []*node.Node {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "cluster.key")
	opened, errs := node.OpenHSMs(t.Context(), hsms, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	b, err := node.NewClusterKey(t.Context(), opened.List)
	opened.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ports := porttest.Ports(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	nodes := make([]*node.Node, 3)
	errs = make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			nodes[i], errs[i] = node.Open(ctx, node.Config{Dir: t.TempDir(), HSMs: hsms, SchedulerInterval: -1, Logger: testLog(fmt.Sprintf("n%d", i+1)),
				Cluster: &node.ClusterConfig{Node: fmt.Sprintf("n%d", i+1), Listen: fmt.Sprintf("127.0.0.1:%d", ports[i]),
					Routes: routes, KeyFile: keyFile}})
		})
	}
	wg.Wait()
	for _, n := range nodes {
		if n != nil {
			t.Cleanup(func() { n.Close() })
			waitReconciled(t, n)
		}
	}
	// Every node's error: one node that fails early keeps the others
	// from electing the cluster's first meta leader.
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: Open err = %v", i+1, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return nodes
}

// TestClusterEveryNodeServes: three nodes started at once agree on one
// root of trust; a key created through node 1 generates a data key
// through node 2 on the next request, and node 3 decrypts it.
func TestClusterEveryNodeServes(t *testing.T) {
	key := newSoftKey(t)
	nodes := openCluster(t, []config.HSM{soft("soft", key)})
	created := 0
	for i, n := range nodes {
		if n.RootID != nodes[0].RootID {
			t.Fatalf("node %d root %s, node 1 root %s", i+1, n.RootID, nodes[0].RootID)
		}
		if n.Created {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d nodes initialised the ledger, want 1", created)
	}
	var cs []*client.Client
	for _, n := range nodes {
		c, _ := serve(t, n)
		cs = append(cs, c)
	}
	ctx := t.Context()
	// Every node's replicas become current, and every node would store
	// a write.
	for i, c := range cs {
		for _, cond := range []string{"replicas", "write"} {
			deadline := time.Now().Add(60 * time.Second)
			for {
				err := c.ReadyFor(ctx, cond)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("node %d: /v1/health/ready?%s not 200 within 60s: %v", i+1, cond, err)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	if err := cs[0].CreateEnclave(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	if err := cs[0].CreateKey(ctx, "e", "k", "", false); err != nil {
		t.Fatal(err)
	}
	// The keyset form, which nodes of an earlier version open.
	if n := sealedLen(t, nodes[0], "e", "k"); n < 138 {
		t.Fatalf("sealed material of e/k: %d bytes, want the keyset form (138 or more)", n)
	}
	dk, err := cs[1].GenerateKey(ctx, "e", "k", 0, []byte("ctx"), 32)
	if err != nil {
		t.Fatalf("GenerateKey through node 2 err = %v", err)
	}
	pt, err := cs[2].Decrypt(ctx, "e", "k", 0, dk.Ciphertext, []byte("ctx"))
	if err != nil {
		t.Fatalf("Decrypt through node 3 err = %v", err)
	}
	if !bytes.Equal(pt.Plaintext, dk.Plaintext) {
		t.Fatal("node 3 decrypted another plaintext")
	}
	// A key deleted through node 3 is refused by node 1 on the next request.
	if err := cs[2].DeleteKey(ctx, "e", "k", 0, true); err != nil {
		t.Fatal(err)
	}
	if _, err := cs[0].GenerateKey(ctx, "e", "k", 0, nil, 32); err == nil {
		t.Fatal("node 1 still generates with a key deleted through node 3")
	}
	checkClusterStatus(t, cs)
	// One verifiable history, whichever node appended: every node checks it.
	for i, c := range cs {
		v, err := c.VerifyLedger(ctx)
		if err != nil || !v.OK {
			t.Fatalf("node %d: VerifyLedger = %+v, %v", i+1, v, err)
		}
	}
}

// checkClusterStatus: every node reports the cluster (three nodes up,
// one leader; the streams' replicas in the metrics), and a node cannot
// remove an unknown node or itself.
func checkClusterStatus(t *testing.T, cs []*client.Client) {
	t.Helper()
	ctx := t.Context()
	st, err := cs[1].ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leaders := 0
	for _, n := range st.NodesUp {
		if n.Role == "Leader" {
			leaders++
		}
	}
	if len(st.NodesUp) != 3 || len(st.NodesDown) != 0 || leaders != 1 {
		t.Fatalf("CLUSTER:STATUS = %+v, want 3 nodes up, one leader", st)
	}
	d, err := cs[2].ClusterDetail(ctx)
	if err != nil || !d.Clustered || d.Node != "n3" || len(d.Streams) != 3 || d.Streams[0].Leader == "" {
		t.Fatalf("ClusterDetail = %+v, %v", d, err)
	}
	m, err := cs[0].Metrics(ctx)
	if err != nil || !bytes.Contains(m, []byte(`kmsledger_cluster_replica_up{leader="true",node=`)) ||
		!bytes.Contains(m, []byte(`kmsledger_cluster_replica_lag_operations{node="n3",stream="LEDGER"}`)) {
		t.Fatalf("metrics lack the cluster's replicas (err %v)", err)
	}
	if err := cs[0].RemoveNode(ctx, "no-such-node"); err == nil {
		t.Fatal("RemoveNode of an unknown node succeeded")
	}
	if err := cs[0].RemoveNode(ctx, "n1"); err == nil {
		t.Fatal("a node removed itself")
	}
}

// TestClusterRefusesForeignHSM: a node whose HSM cannot open the cluster
// key does not start (and so neither joins nor writes).
func TestClusterRefusesForeignHSM(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "cluster.key")
	opened, _ := node.OpenHSMs(t.Context(), []config.HSM{soft("soft", newSoftKey(t))}, nil)
	b, _ := node.NewClusterKey(t.Context(), opened.List)
	opened.Close()
	os.WriteFile(keyFile, b, 0o600)
	other := []config.HSM{soft("other", newSoftKey(t))}
	_, err := node.Open(t.Context(), node.Config{Dir: t.TempDir(), HSMs: other,
		Cluster: &node.ClusterConfig{Node: "x", Listen: "127.0.0.1:0", Routes: []string{"nats://127.0.0.1:1"}, KeyFile: keyFile}})
	if !errors.Is(err, node.ErrClusterKey) {
		t.Fatalf("Open with a foreign HSM err = %v, want ErrClusterKey", err)
	}
}

// TestClusterJobsRunOnce: a scheduled deletion that falls due is carried
// out by every node's scheduler at once (their clocks moved past the
// deadline) and lands as exactly one key.deleted.v1 event; and only the
// node that writes LEDGER runs periodic jobs.
func TestClusterJobsRunOnce(t *testing.T) {
	nodes := openCluster(t, []config.HSM{soft("soft", newSoftKey(t))})
	ctx := t.Context()
	h := nodes[0].Handler
	if _, err := h.Execute(ctx, nodes[0].RootID, "", commands.CreateEnclave{Name: "e"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Execute(ctx, nodes[0].RootID, "", commands.CreateKey{Enclave: "e", Name: "k"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Hour)
	if _, err := h.Execute(ctx, nodes[0].RootID, "", commands.ScheduleKeyDeletion{Enclave: "e", Name: "k", Deadline: deadline}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		n.Handler.Now = func() time.Time { return deadline.Add(time.Minute) }
		wg.Go(func() {
			if _, err := n.Handler.DestroyDue(ctx); err != nil {
				t.Errorf("DestroyDue err = %v", err)
			}
		})
	}
	wg.Wait()
	deleted := 0
	if _, err := nodes[2].Store.Replay(ctx, 0, func(ev ledger.Event) error {
		if ev.Type == ledger.TypeKeyDeleted {
			deleted++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if deleted != 1 {
		t.Fatalf("%d key.deleted.v1 events after three schedulers ran, want 1", deleted)
	}
	leaders := 0
	for _, n := range nodes {
		if n.Store.IsLeader() {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d nodes run periodic jobs, want 1", leaders)
	}
}

// TestClusterRevocationNextRequest: an identity created through node 1
// is served by node 3 on the next request (node 3 catches up before a
// refusal), and once its deletion through node 1 returned, node 3
// refuses it on the next request (the deletion waited for the other
// nodes: commands.propagate). The same for a policy deleted and a key
// disabled. Several rounds, since without the barrier the race is lost
// only some of the time.
func TestClusterRevocationNextRequest(t *testing.T) {
	nodes := openCluster(t, []config.HSM{soft("soft", newSoftKey(t))})
	var addrs []string
	var roots []*client.Client
	for _, n := range nodes {
		c, addr := serveAt(t, n)
		roots, addrs = append(roots, c), append(addrs, addr)
	}
	ctx := t.Context()
	if err := roots[0].CreateEnclave(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	if err := roots[0].CreateKey(ctx, "e", "k", "", false); err != nil {
		t.Fatal(err)
	}
	for round := range 6 {
		policy := fmt.Sprintf("p%d", round)
		if err := roots[0].CreatePolicy(ctx, "e", &wire.CreatePolicyRequest{Name: policy, Allow: map[string][]string{"KEY:GENERATE": {"k"}}}); err != nil {
			t.Fatal(err)
		}
		key, id := newAPIKey(t)
		if err := roots[0].CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: id, Privilege: "User"}); err != nil {
			t.Fatal(err)
		}
		if err := roots[0].AssignPolicy(ctx, "e", id, policy); err != nil {
			t.Fatal(err)
		}
		user3 := rootClient(t, nodes[2], addrs[2], key)
		if _, err := user3.GenerateKey(ctx, "e", "k", 0, nil, 32); err != nil {
			t.Fatalf("round %d: a User created through node 1, through node 3 on the next request: %v", round, err)
		}
		var revoke func() error
		switch round % 3 {
		case 0:
			revoke = func() error { return roots[0].DeleteIdentity(ctx, "e", id) }
		case 1:
			revoke = func() error { return roots[0].DeletePolicy(ctx, "e", policy) }
		default:
			revoke = func() error { return roots[0].DisableKey(ctx, "e", "k", 0) }
		}
		if err := revoke(); err != nil {
			t.Fatalf("round %d: revoke through node 1: %v", round, err)
		}
		if _, err := user3.GenerateKey(ctx, "e", "k", 0, nil, 32); err == nil {
			t.Fatalf("round %d: node 3 served the User on the next request after a revocation through node 1 returned", round)
		}
		if round%3 == 2 {
			if err := roots[0].EnableKey(ctx, "e", "k", 0); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// sealedLen is the size of the sealed material of version 1 of key name
// in enclave as n stores it: 66 bytes in the compact form of an AES-256
// version, 138 to 142 in the keyset form (the keyset's key id is a random
// varint; hsm/version.go).
func sealedLen(t *testing.T, n *node.Node, enclave, name string) int {
	t.Helper()
	if err := n.Proj.CatchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	var ref string
	n.Proj.View(func(s *projections.State) {
		ref = s.Enclaves[enclave].Keys[name].Version(1).SecretRef(enclave, name)
	})
	sealed, err := n.Store.GetSecret(t.Context(), ref)
	if err != nil {
		t.Fatalf("sealed material of %s/%s: %v", enclave, name, err)
	}
	return len(sealed)
}
