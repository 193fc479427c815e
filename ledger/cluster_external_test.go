package ledger

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/kmsledger/kmsledger/ledger/porttest"
)

// startPlainCluster starts three clustered NATS servers with JetStream
// (no kmsledger in them) and returns their client URLs.
func startPlainCluster(t *testing.T) []string {
	t.Helper()
	ports := porttest.Ports(t, 3)
	routes := ""
	for i, p := range ports {
		if i > 0 {
			routes += ","
		}
		routes += fmt.Sprintf("nats://127.0.0.1:%d", p)
	}
	var urls []string
	var servers []*server.Server
	for i := range 3 {
		opts := &server.Options{ServerName: fmt.Sprintf("p%d", i+1), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: t.TempDir(), SyncAlways: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "plain", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(routes)}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		servers = append(servers, s)
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	}
	for _, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("server not ready")
		}
		urls = append(urls, s.ClientURL())
	}
	return urls
}

// TestExternalClusterStores: two Stores on an existing NATS cluster
// (Config.External) append at once; every append is stored once, in one
// hash chain that each verifies.
func TestExternalClusterStores(t *testing.T) {
	urls := startPlainCluster(t)
	var stores []*Store
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		s, err := Open(ctx, Config{Dir: t.TempDir(), External: &ExternalConfig{URLs: urls}})
		cancel()
		if err != nil {
			t.Fatalf("Open external err = %v", err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	if !stores[0].Clustered() || stores[0].Replicas() != 3 {
		t.Fatalf("external store: Clustered %v Replicas %d, want true 3", stores[0].Clustered(), stores[0].Replicas())
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			for j := range 15 {
				ev := testEvent(KeySubject("enc", fmt.Sprintf("x%d-%d", i, j)), rand.Text())
				if _, _, err := s.Append(ctx, ev, Expect{}); err != nil {
					t.Errorf("store %d append %d: %v", i, j, err)
				}
			}
		})
	}
	wg.Wait()
	for i, s := range stores {
		rep, err := s.Verify(ctx, VerifyOptions{})
		if err != nil {
			t.Fatalf("store %d Verify err = %v", i, err)
		}
		if rep.Ledger.Last != 30 {
			t.Errorf("store %d verified through %d, want 30", i, rep.Ledger.Last)
		}
	}
}
