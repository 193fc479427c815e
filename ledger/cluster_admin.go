package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// Clustered reports whether other nodes may append to the streams (a
// cluster node, or a Store on an external NATS cluster).
func (s *Store) Clustered() bool { return s.clustered }

// Replicas returns the replica count of the streams.
func (s *Store) Replicas() int { return max(s.replicas, 1) }

// NodeName returns this node's name in its cluster ("" when not a
// cluster node).
func (s *Store) NodeName() string { return s.node }

// IsLeader reports whether periodic jobs (checkpoints, scheduled
// deletions) should run here: on a single server always; in an embedded
// cluster only on the node that leads LEDGER, so that one node runs them
// at a time. On an external cluster every node runs them, and they are
// idempotent by construction (deterministic command ids and expected
// sequences).
func (s *Store) IsLeader() bool {
	w := s.chains.ledger.w
	return w == nil || w.writes(ledgerStream)
}

// compactSecrets makes this node's Raft log of SECRETS forget erased
// material: an erase is applied to the stream's blocks on every replica,
// but the log keeps the original write until the next snapshot, which
// this installs now. A no-op off an embedded cluster.
func (s *Store) compactSecrets() error {
	if !s.clustered || s.ns == nil {
		return nil
	}
	if err := s.ns.JetStreamSnapshotStream(server.DEFAULT_GLOBAL_ACCOUNT, secretsStream); err != nil {
		// Also "no snapshot available" when nothing was applied since
		// the last one: the watcher simply tries again.
		s.log.Debug("ledger: snapshot of SECRETS after an erase failed; retried", "err", err)
		s.eraseSeen.Store(0) // let the watcher try again
		return err
	}
	return nil
}

// watchErasures runs on every node of an embedded cluster: when the
// SECRETS stream lost messages (an erase, decided by whichever node),
// it waits for this replica to apply it and snapshots the local Raft log
// (compactSecrets). It returns when ctx ends.
func (s *Store) watchErasures(ctx context.Context, every time.Duration) {
	if info, err := s.secrets.Info(ctx); err == nil {
		s.eraseSeen.Store(erasedMark(info)) // what was erased before is compacted already
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := s.secrets.Info(ictx)
		cancel()
		if err != nil {
			continue
		}
		mark := erasedMark(info)
		if s.eraseSeen.Load() == mark {
			continue
		}
		// mark is the leader's count. A snapshot taken before this replica
		// applied the erase would keep the material in its Raft log until
		// the next erase, so wait for the replica (the next tick asks
		// again; under load a replica can lag by more than a tick).
		local, ok := s.localErasedMark()
		if !ok || local < mark {
			continue
		}
		if s.compactSecrets() == nil {
			s.eraseSeen.Store(local)
		}
	}
}

// localErasedMark is erasedMark of this node's own replica of SECRETS,
// as its server's monitoring reports it (not the leader's).
func (s *Store) localErasedMark() (uint64, bool) {
	d, err := s.ns.JszAccount(&server.JSzOptions{Account: server.DEFAULT_GLOBAL_ACCOUNT, Streams: true})
	if err != nil {
		return 0, false
	}
	for _, sd := range d.Streams {
		if sd.Name == secretsStream {
			return erased(sd.State.LastSeq, sd.State.Msgs), true
		}
	}
	return 0, false
}

// erasedMark counts the messages SECRETS ever lost, plus one (0 means
// "not known"): the stream has no limits, so every sequence up to the
// last that holds no message was erased.
func erasedMark(info *jetstream.StreamInfo) uint64 {
	return erased(info.State.LastSeq, info.State.Msgs)
}

// erased is erasedMark of a stream state's last sequence and message
// count, from whichever report they come.
func erased(lastSeq, msgs uint64) uint64 { return lastSeq - msgs + 1 }

// StartErasureWatch starts watchErasures on an embedded cluster node;
// it stops with ctx. Elsewhere it does nothing.
func (s *Store) StartErasureWatch(ctx context.Context, every time.Duration) {
	if !s.clustered || s.ns == nil {
		return
	}
	go s.watchErasures(ctx, every)
}

// WriteReady reports whether a write would be stored now: every stream
// has a leader and, on an embedded node, this node is connected to the
// cluster's meta leader.
func (s *Store) WriteReady(ctx context.Context) error {
	if s.isClosed() {
		return ErrClosed
	}
	if s.ns != nil && s.clustered && !s.ns.JetStreamIsCurrent() {
		return fmt.Errorf("%w: not connected to the cluster's leader", ErrUnavailable)
	}
	for _, st := range []jetstream.Stream{s.ledger, s.secrets, s.audit} {
		if _, err := st.Info(ctx); err != nil {
			if !errors.Is(err, ErrUnavailable) {
				err = fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			return err
		}
	}
	return nil
}

// ReplicasCurrent reports whether this node's replicas are current: on
// an embedded node, JetStream's health check (its meta state and every
// stream replica it holds caught up with their leaders), so that the
// cluster tolerates the loss of another node again; on an external NATS
// cluster, whether a write would be stored (WriteReady).
func (s *Store) ReplicasCurrent(ctx context.Context) error {
	if s.ns == nil || !s.clustered {
		return s.WriteReady(ctx)
	}
	if s.isClosed() {
		return ErrClosed
	}
	if hs := s.ns.Healthz(&server.HealthzOptions{}); hs.Status != "ok" {
		return fmt.Errorf("%w: replicas not current: %s", ErrUnavailable, hs.Error)
	}
	return s.WriteReady(ctx)
}

// Peer is one node as the cluster sees it.
type Peer struct {
	Name    string        `json:"name"`
	Leader  bool          `json:"leader,omitempty"`  // of LEDGER
	Current bool          `json:"current"`           // caught up with the leader
	Offline bool          `json:"offline,omitempty"` // not heard from
	Active  time.Duration `json:"active"`            // since last heard from
	Lag     uint64        `json:"lag"`               // operations behind the leader
}

// StreamStatus is one stream's replication.
type StreamStatus struct {
	Name     string `json:"name"`
	Leader   string `json:"leader"`
	Replicas int    `json:"replicas"`
	Messages uint64 `json:"messages"`
	LastSeq  uint64 `json:"last_seq"`
	Peers    []Peer `json:"peers"`
}

// ClusterStatus is what the streams' replication looks like.
type ClusterStatus struct {
	Node      string         `json:"node"`    // this node ("" when single)
	Cluster   string         `json:"cluster"` // NATS cluster name
	Clustered bool           `json:"clustered"`
	Streams   []StreamStatus `json:"streams"`
}

// Nodes returns every node named in the streams' replica sets, sorted,
// and whether it is up (current or at least not offline).
func (c *ClusterStatus) Nodes() (up, down []string) {
	state := map[string]bool{}
	for _, st := range c.Streams {
		for _, p := range st.Peers {
			if ok, seen := state[p.Name]; !seen || ok {
				state[p.Name] = !p.Offline
			}
		}
	}
	for n, ok := range state {
		if ok {
			up = append(up, n)
		} else {
			down = append(down, n)
		}
	}
	slices.Sort(up)
	slices.Sort(down)
	return up, down
}

// Status returns the replication state of the streams. A stream whose
// information cannot be had (no leader) is listed with an empty leader.
func (s *Store) Status(ctx context.Context) (*ClusterStatus, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	out := &ClusterStatus{Node: s.node, Clustered: s.clustered}
	for _, st := range []jetstream.Stream{s.ledger, s.secrets, s.audit} {
		name := st.CachedInfo().Config.Name
		info, err := st.Info(ctx)
		if err != nil {
			out.Streams = append(out.Streams, StreamStatus{Name: name, Replicas: s.Replicas()})
			continue
		}
		ss := StreamStatus{Name: name, Replicas: info.Config.Replicas, Messages: info.State.Msgs, LastSeq: info.State.LastSeq}
		if c := info.Cluster; c != nil {
			out.Cluster = c.Name
			ss.Leader = c.Leader
			if c.Leader != "" {
				ss.Peers = append(ss.Peers, Peer{Name: c.Leader, Leader: name == ledgerStream, Current: true})
			}
			for _, r := range c.Replicas {
				ss.Peers = append(ss.Peers, Peer{Name: r.Name, Current: r.Current, Offline: r.Offline, Active: r.Active, Lag: r.Lag})
			}
		}
		if len(ss.Peers) == 0 && !s.clustered {
			ss.Leader = "local"
			ss.Peers = []Peer{{Name: "local", Leader: name == ledgerStream, Current: true}}
		}
		out.Streams = append(out.Streams, ss)
	}
	return out, nil
}

// ErrNotCluster reports a cluster operation on a Store that is not an
// embedded cluster node.
var ErrNotCluster = errors.New("ledger: not an embedded cluster node")

// RemovePeer removes a node from the cluster's membership (JetStream's
// SERVER.REMOVE, for a node that is gone for good): its replicas move
// to a spare node if there is one, and it may only rejoin later. It needs
// the cluster's meta leader.
func (s *Store) RemovePeer(ctx context.Context, name string) error {
	if s.sysNC == nil {
		return ErrNotCluster
	}
	if !ValidName(name) {
		return fmt.Errorf("ledger: remove peer %q: %w", name, ErrInvalid)
	}
	if name == s.node {
		return fmt.Errorf("ledger: remove peer %q: this node cannot remove itself (stop it, then remove it from another node): %w", name, ErrInvalid)
	}
	body, _ := json.Marshal(map[string]string{"peer": name})
	m, err := s.sysNC.RequestWithContext(ctx, "$JS.API.SERVER.REMOVE", body)
	if err != nil {
		return fmt.Errorf("%w: remove peer %s: %w", ErrUnavailable, name, err)
	}
	var r struct {
		Error   *jetstream.APIError `json:"error"`
		Success bool                `json:"success"`
	}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return fmt.Errorf("ledger: remove peer %s: %w", name, err)
	}
	if r.Error != nil {
		return fmt.Errorf("ledger: remove peer %s: %w", name, r.Error)
	}
	if !r.Success {
		return fmt.Errorf("ledger: remove peer %s: not removed", name)
	}
	return nil
}
