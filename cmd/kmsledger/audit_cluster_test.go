package main

import (
	"testing"

	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/ledger"
)

// TestClusterAuditBatch: a cluster node's audit backlog defaults to
// DefaultClusterAuditBatch; a single node, a set value and auditing off
// are left alone.
func TestClusterAuditBatch(t *testing.T) {
	for _, c := range []struct {
		name    string
		cluster bool
		set     bool
		audit   bool
		want    int
	}{
		{"cluster node", true, false, true, ledger.DefaultClusterAuditBatch},
		{"cluster node, --audit-batch given", true, true, true, 100},
		{"single node", false, false, true, 100},
		{"cluster node, auditing off", true, false, false, 0},
	} {
		cfg := node.Config{}
		if c.cluster {
			cfg.Cluster = &node.ClusterConfig{}
		}
		if c.audit {
			cfg.Audit = &ledger.AuditConfig{Batch: 100}
		}
		clusterAuditBatch(&cfg, c.set)
		got := 0
		if cfg.Audit != nil {
			got = cfg.Audit.Batch
		}
		if got != c.want {
			t.Errorf("%s: audit batch %d, want %d", c.name, got, c.want)
		}
	}
}
