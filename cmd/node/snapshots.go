package node

import (
	"path/filepath"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/projections"
)

// SnapshotDir is where a node keeps its projection snapshots, under its
// data dir. Each node of a cluster keeps its own.
const SnapshotDir = "snapshots"

// SnapshotSettings tune a node's projection snapshots
// (projections.SnapshotConfig). Zero fields are the defaults.
type SnapshotSettings struct {
	Disabled bool          // no snapshots: every start replays the whole ledger
	Events   uint64        // events between two snapshots
	Interval time.Duration // longest wait of a tail of Events/100 events for a snapshot (< 0: only by events)
	Keep     int           // full snapshots kept, each with its newest delta
}

// snapshotConfig is the projection's snapshot configuration: files in
// DIR/snapshots, sealed under the REK, which the configured HSMs unseal
// from the snapshot's header before the projection has a state.
func (n *Node) snapshotConfig() *projections.SnapshotConfig {
	s := n.cfg.Snapshots
	if s.Disabled || n.cfg.Dir == "" {
		return nil
	}
	ws := make([]hsm.Wrapper, len(n.HSMs))
	for i, h := range n.HSMs {
		ws[i] = h.W
	}
	return &projections.SnapshotConfig{Dir: filepath.Join(n.cfg.Dir, SnapshotDir), Every: s.Events, Interval: s.Interval,
		Keep: s.Keep, Unseal: projections.UnsealWith(ws)}
}
