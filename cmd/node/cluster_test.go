package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
)

// freePorts returns n TCP ports free on 127.0.0.1 now.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
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
	ports := freePorts(t, 3)
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
			nodes[i], errs[i] = node.Open(ctx, node.Config{Dir: t.TempDir(), HSMs: hsms, SchedulerInterval: -1,
				Cluster: &node.ClusterConfig{Node: fmt.Sprintf("n%d", i+1), Listen: fmt.Sprintf("127.0.0.1:%d", ports[i]),
					Routes: routes, KeyFile: keyFile}})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: Open err = %v", i+1, err)
		}
	}
	for _, n := range nodes {
		t.Cleanup(func() { n.Close() })
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
	if err := cs[0].CreateEnclave(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	if err := cs[0].CreateKey(ctx, "e", "k", "", false); err != nil {
		t.Fatal(err)
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
