package main

import (
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/ledger"
)

// TestClusterAuditDefaults: a cluster node's audit backlog and slot wait
// default to DefaultClusterAuditBatch and DefaultClusterAuditWait; a
// single node, a set value and auditing off are left alone.
func TestClusterAuditDefaults(t *testing.T) {
	const batch, wait = 100, 2 * time.Second
	for _, c := range []struct {
		name              string
		cluster, external bool
		batchSet, waitSet bool
		audit             bool
		wantBatch         int
		wantWait          time.Duration
	}{
		{"cluster node", true, false, false, false, true, ledger.DefaultClusterAuditBatch, ledger.DefaultClusterAuditWait},
		{"external NATS", false, true, false, false, true, ledger.DefaultClusterAuditBatch, ledger.DefaultClusterAuditWait},
		{"cluster node, --audit-batch given", true, false, true, false, true, batch, ledger.DefaultClusterAuditWait},
		{"cluster node, --audit-wait given", true, false, false, true, true, ledger.DefaultClusterAuditBatch, wait},
		{"single node", false, false, false, false, true, batch, wait},
		{"cluster node, auditing off", true, false, false, false, false, 0, 0},
	} {
		cfg := node.Config{}
		if c.cluster {
			cfg.Cluster = &node.ClusterConfig{}
		}
		if c.external {
			cfg.External = &ledger.ExternalConfig{}
		}
		if c.audit {
			cfg.Audit = &ledger.AuditConfig{Batch: batch, Wait: wait}
		}
		clusterAuditDefaults(&cfg, c.batchSet, c.waitSet)
		var gotBatch int
		var gotWait time.Duration
		if cfg.Audit != nil {
			gotBatch, gotWait = cfg.Audit.Batch, cfg.Audit.Wait
		}
		if gotBatch != c.wantBatch || gotWait != c.wantWait {
			t.Errorf("%s: audit batch %d wait %v, want %d and %v", c.name, gotBatch, gotWait, c.wantBatch, c.wantWait)
		}
	}
}
