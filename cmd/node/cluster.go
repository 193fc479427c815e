package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
)

// Defaults of a clustered node.
const (
	// DefaultStaleness is how long a node that cannot confirm it is
	// current with its cluster keeps serving crypto from its projection.
	DefaultStaleness = 30 * time.Second
	// freshEvery is how often a clustered node confirms it is current:
	// it asks the LEDGER leader for the head and waits until its
	// projection has applied it.
	freshEvery = time.Second
	// eraseWatchEvery is how often a node checks for erased material to
	// drop from its Raft log (ledger.Store.StartErasureWatch).
	eraseWatchEvery = 2 * time.Second
)

// ClusterConfig makes a node one of a cluster (see ledger.ClusterConfig;
// the secret comes from the sealed cluster key file).
type ClusterConfig struct {
	Name      string   // NATS cluster name ("" = ledger.DefaultClusterName)
	Node      string   // this node's unique name
	Listen    string   // route listener host:port
	Advertise string   // host:port other nodes dial, if not Listen
	Routes    []string // nats://host:port of the nodes
	KeyFile   string   // the cluster key, sealed under the HSMs (NewClusterKey)
	Replicas  int      // 1, 3 or 5; 0 = 3 with three or more nodes
	// Secret, if set, is the cluster key itself (for tests); KeyFile is
	// then not read.
	Secret []byte
}

// ledgerConfig is the ledger's configuration: a cluster node's opens the
// cluster key with the node's HSMs first, so a node that is not the
// cluster's stops here, before it has started anything.
func (n *Node) ledgerConfig(ctx context.Context) (ledger.Config, error) {
	c := ledger.Config{Dir: n.cfg.Dir, Logger: n.log, External: n.cfg.External}
	cc := n.cfg.Cluster
	if cc == nil {
		return c, nil
	}
	secret := cc.Secret
	if secret == nil {
		if cc.KeyFile == "" {
			return c, fmt.Errorf("%w: a cluster node needs the cluster key file (make it once with `kmsledger cluster init`)", ErrClusterKey)
		}
		var err error
		if secret, err = OpenClusterKey(ctx, cc.KeyFile, n.HSMs); err != nil {
			return c, err
		}
	}
	c.Cluster = &ledger.ClusterConfig{Name: cc.Name, Node: cc.Node, Listen: cc.Listen, Advertise: cc.Advertise,
		Routes: cc.Routes, Secret: secret, Replicas: cc.Replicas}
	return c, nil
}

// freshness is when a clustered node last confirmed it is current.
type freshness struct {
	at atomic.Int64 // unix nanoseconds; 0 = never
}

// startCluster starts what only a clustered node runs: confirming that
// it is current, and dropping erased material from its Raft log.
func (n *Node) startCluster() {
	if !n.Store.Clustered() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.Store.StartErasureWatch(ctx, eraseWatchEvery)
	if err := n.Store.StartBarrier(ctx, n.Proj.WaitFor); err != nil {
		// Revocations then return without waiting for the other nodes;
		// they are in force there as their subscriptions deliver them.
		n.log.Error("cannot join the cluster's revocation barrier", "err", err)
	}
	n.fresh.at.Store(time.Now().UnixNano()) // Open caught up with the leader
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(freshEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cctx, ccancel := context.WithTimeout(ctx, 2*freshEvery)
			err := n.Proj.CatchUp(cctx)
			ccancel()
			if err == nil {
				n.fresh.at.Store(time.Now().UnixNano())
			} else if ctx.Err() == nil {
				n.log.Debug("cannot confirm this node is current with the cluster", "err", err)
			}
		}
	}()
	n.onClose(func() error { cancel(); <-done; return nil })
}

// ErrStale reports a clustered node that has not been able to confirm
// it is current for longer than its staleness bound.
var ErrStale = errors.New("node: cut off from the cluster")

// stale returns ErrStale (wrapped, with the age) when the node has not
// confirmed it is current within its staleness bound.
func (n *Node) stale() error {
	bound := n.cfg.Staleness
	if bound <= 0 {
		bound = DefaultStaleness
	}
	at := n.fresh.at.Load()
	if at == 0 {
		return nil // not started yet: Open is still catching up
	}
	if age := time.Since(time.Unix(0, at)); age > bound {
		return fmt.Errorf("%w: not confirmed current for %s (bound %s)", ErrStale, age.Round(time.Second), bound)
	}
	return nil
}

// clusterView is what the API asks about the cluster; nil for a single
// node.
func (n *Node) clusterView() *api.ClusterView {
	if n.Store == nil || !n.Store.Clustered() {
		return nil
	}
	return &api.ClusterView{
		Stale:           n.stale,
		WriteReady:      n.Store.WriteReady,
		ReplicasCurrent: n.Store.ReplicasCurrent,
		Status:          n.Store.Status,
		RemovePeer:      n.Store.RemovePeer,
	}
}

// verify recomputes the hash chains of the node's ledger and checks the
// signed checkpoints against the signing keys its REK vouches for
// (GET /v1/ledger/verify): on a cluster node, the replicated streams as
// their leaders have them.
func (n *Node) verify(ctx context.Context) (*api.Verification, error) {
	v := &api.Verification{Node: n.Store.NodeName(), CheckedAt: time.Now().UTC()}
	keys, rejected, err := commands.TrustedSigningKeys(ctx, n.Store, n.rek)
	for _, r := range rejected {
		v.Rejected = append(v.Rejected, r.Error())
	}
	if err != nil {
		v.Error = "no trusted checkpoint key: " + err.Error()
	}
	rep, verr := n.Store.Verify(ctx, ledger.VerifyOptions{Keys: keys})
	v.Report = rep
	switch {
	case verr != nil:
		v.Error = verr.Error()
	case err == nil:
		v.OK = true
	}
	return v, nil
}
