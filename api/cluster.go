package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// ClusterView is what the API needs to know about the cluster of a
// clustered node (nil for a single node). Other nodes write too, so:
//   - a refusal (unknown identity, no permission) is answered only after
//     the projection has caught up with the LEDGER leader, so that what
//     another node just wrote is in force here on the next request;
//   - while Stale reports an error (the node has not confirmed it is
//     current within its staleness bound), every request that needs the
//     projection is answered 503;
//   - /v1/health/ready?write asks WriteReady, ?replicas ReplicasCurrent.
type ClusterView struct {
	Stale           func() error
	WriteReady      func(context.Context) error
	ReplicasCurrent func(context.Context) error
	Status          func(context.Context) (*ledger.ClusterStatus, error)
	RemovePeer      func(ctx context.Context, name string) error
}

// catchUpTimeout bounds the wait for the projection before a refusal.
const catchUpTimeout = 2 * time.Second

// errStale is the answer of a node cut off from its cluster for longer
// than its staleness bound.
var errStale = &statusError{http.StatusServiceUnavailable,
	"this node is cut off from its cluster: retry on another node"}

// checkFresh refuses a request that needs the projection on a node that
// is cut off from its cluster.
func (s *Server) checkFresh() error {
	if c := s.cfg.Cluster; c != nil && c.Stale != nil && c.Stale() != nil {
		return errStale
	}
	return nil
}

// decideCurrent runs decide on the projection and, in a cluster, once
// more after catching up with the leader if the first answer was a
// refusal: the identity or the grant may have been written through
// another node a moment ago.
func (s *Server) decideCurrent(ctx context.Context, decide func(*projections.State) error) error {
	var err error
	s.proj.View(func(st *projections.State) { err = decide(st) })
	if err == nil || s.cfg.Cluster == nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	if cerr := s.proj.CatchUp(cctx); cerr != nil {
		return err
	}
	s.proj.View(func(st *projections.State) { err = decide(st) })
	return err
}

// verifyTimeout bounds an online verification (it reads both streams;
// a ledger too long for it is verified offline, from an export).
const verifyTimeout = requestTimeout

// handleLedgerVerify recomputes the hash chains of this node's streams
// and checks every signed checkpoint against the keys the HSM vouches
// for (root only; Config.Verify). A failed verification is a finding,
// answered 200 with ok false and the reason.
func (s *Server) handleLedgerVerify(w http.ResponseWriter, r *http.Request, in routeReq) {
	if s.cfg.Verify == nil {
		writeError(w, r, s.log, errNotSupported)
		return
	}
	v, err := s.cfg.Verify(in.ctx)
	if err != nil && v == nil {
		writeError(w, r, s.log, err)
		return
	}
	b, _ := json.Marshal(v)
	writeBody(w, "application/json", b)
}

// Verification is the answer of GET /v1/ledger/verify.
type Verification struct {
	OK        bool                 `json:"ok"`
	Error     string               `json:"error,omitempty"`
	Report    *ledger.VerifyReport `json:"report,omitempty"`
	Rejected  []string             `json:"rejected_keys,omitempty"` // recorded signing keys the HSMs do not vouch for
	Node      string               `json:"node,omitempty"`
	CheckedAt time.Time            `json:"checked_at"`
}

// errNotClustered answers CLUSTER:REMOVENODE on a single node.
var errNotClustered = &statusError{http.StatusConflict, "this node is not part of a cluster"}

// removeNode removes the node named host (its --node name) from the
// cluster: for a node that is gone for good (JetStream peer removal).
func (s *Server) removeNode(ctx context.Context, host string) error {
	c := s.cfg.Cluster
	if c == nil || c.RemovePeer == nil {
		return errNotClustered
	}
	if !ledger.ValidName(host) {
		return badRequest("invalid node name %q: give the node's --node name", truncate(host))
	}
	if err := c.RemovePeer(ctx, host); err != nil {
		if errors.Is(err, ledger.ErrUnavailable) {
			return err
		}
		return &statusError{http.StatusConflict, "remove node: " + err.Error()}
	}
	return nil
}

// clusterStatusOf returns the replication state: the cluster's, or a
// single node's own.
func (s *Server) clusterStatusOf(ctx context.Context) (*ledger.ClusterStatus, error) {
	if c := s.cfg.Cluster; c != nil && c.Status != nil {
		return c.Status(ctx)
	}
	return &ledger.ClusterStatus{Streams: []ledger.StreamStatus{{Name: "LEDGER", Leader: s.host, Replicas: 1,
		LastSeq: s.proj.Seq(), Peers: []ledger.Peer{{Name: s.host, Leader: true, Current: true}}}}}, nil
}

// nodes is the CLUSTER:STATUS view: the nodes named by the streams'
// replica sets, numbered in name order, the LEDGER leader as Leader.
func (s *Server) nodes(ctx context.Context) clusterView {
	if s.cfg.Cluster == nil {
		return s.singleNode()
	}
	st, err := s.clusterStatusOf(ctx)
	if err != nil || len(st.Streams) == 0 {
		return s.singleNode()
	}
	up, down := st.Nodes()
	names := append(append([]string(nil), up...), down...)
	slices.Sort(names)
	ledgerSt := st.Streams[0]
	peers := map[string]ledger.Peer{}
	for _, p := range ledgerSt.Peers {
		peers[p.Name] = p
	}
	v := clusterView{Down: map[uint32]string{}, LeaderID: -1}
	for i, name := range names {
		id := uint32(i)
		p := peers[name]
		if p.Offline || !slices.Contains(up, name) {
			v.Down[id] = name
			continue
		}
		role := "Follower"
		if name == ledgerSt.Leader {
			role, v.LeaderID = "Leader", int64(id)
		}
		n := nodeView{ID: id, Host: name, Role: role, Commit: ledgerSt.LastSeq - min(p.Lag, ledgerSt.LastSeq), LastHeartbeat: p.Active}
		if name == st.Node {
			n.Self, n.Commit, n.UpTime, n.LastHeartbeat = true, s.proj.Seq(), time.Since(s.start), 0
		}
		v.Up = append(v.Up, n)
	}
	return v
}

// handleClusterStatus answers GET /v1/cluster/status (root): the
// replication of every stream, its leader and every replica's state and
// lag, as this node sees it.
func (s *Server) handleClusterStatus(w http.ResponseWriter, r *http.Request, in routeReq) {
	st, err := s.clusterStatusOf(in.ctx)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	b, _ := json.Marshal(st)
	writeBody(w, "application/json", b)
}
