package api

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/projections"
)

// The cluster commands of the kms API and KEY:LISTVERSIONS. Every one of
// them is for the root identity only (access.Explain grants no
// CLUSTER:* command to anybody else); KEY:LISTVERSIONS is a key read
// that policies allow like KEY:STATUS.
//
//	CLUSTER:STATUS      one ServerStatusResponse per node (clusterStatus)
//	CLUSTER:ADDHSM      seal the REK under a configured HSM (as add-hsm)
//	CLUSTER:REMOVEHSM   remove the sealing under an HSM (as rm-hsm)
//	CLUSTER:REMOVENODE  remove a node that is gone for good (cluster.go)
//	CLUSTER:ADDNODE, CLUSTER:EDIT
//	                    409: nodes join by their configuration
//	KEY:LISTVERSIONS    the live versions of one key (listVersions)

// errClusterByConfig answers the membership commands: a node's cluster
// is its configuration (README.md, "Clusters"), not a command.
var errClusterByConfig = &statusError{http.StatusConflict,
	"cluster membership is set by each node's configuration, not by command: start a new node with the cluster key and --routes and it joins by itself; remove a dead one with CLUSTER:REMOVENODE"}

// decodeOps decodes the frames handleKMS does not: the cluster commands
// and KEY:LISTVERSIONS.
func (s *Server) decodeOps(req request, f wire.Frame) (call, error) {
	c := call{cmd: f.Cmd}
	var m message
	switch f.Cmd {
	case wire.CmdClusterStatus:
		m = new(wire.ClusterStatusRequest)
	case wire.CmdClusterAddNode:
		m = new(wire.AddClusterNodeRequest)
	case wire.CmdClusterRemoveNode:
		m = new(wire.RemoveClusterNodeRequest)
	case wire.CmdClusterEdit:
		m = new(wire.EditClusterRequest)
	case wire.CmdClusterAddHSM:
		m = new(wire.AddHSMRequest)
	case wire.CmdClusterRemoveHSM:
		m = new(wire.RemoveHSMRequest)
	case wire.CmdKeyListVersions:
		m = new(wire.ListRequest)
	default:
		return c, badRequest("unknown command %d", uint16(f.Cmd))
	}
	if err := m.UnmarshalProto(f.Body); err != nil {
		return c, badRequest("malformed %s message: %s", f.Cmd, inputDetail(err))
	}
	c.msg = m
	switch m := m.(type) {
	case *wire.ClusterStatusRequest:
		c.run = func(ctx context.Context) (message, error) { return s.clusterStatus(ctx, s.nodes(ctx)), nil }
	case *wire.RemoveClusterNodeRequest:
		c.cluster = func(ctx context.Context, _ string) error { return s.removeNode(ctx, m.Host) }
	case *wire.ListRequest:
		e := req.enclave
		c.resource = m.Prefix
		c.run = func(ctx context.Context) (message, error) { return s.listVersions(ctx, e, m) }
	case *wire.AddHSMRequest:
		c.resource = m.Name
		c.cluster = func(ctx context.Context, identity string) error {
			err := s.addHSM(ctx, identity, m.Name)
			if m.Overwrite && errors.Is(err, commands.ErrHSMExists) {
				return nil // already sealed under it: the same REK, the same state
			}
			return err
		}
	case *wire.RemoveHSMRequest:
		c.resource = m.Name
		c.cluster = func(ctx context.Context, identity string) error { return s.h.RemoveHSM(ctx, identity, m.Name) }
	default: // ADDNODE, EDIT
		c.cluster = func(context.Context, string) error { return errClusterByConfig }
	}
	return c, nil
}

// runCluster runs a request of cluster write commands, one at a time:
// they are not ledger commands and cannot be batched atomically, so a
// request holds exactly one.
func (s *Server) runCluster(ctx context.Context, req request, calls []call) error {
	if len(calls) != 1 {
		return badRequest("a cluster command must be the only frame of its request")
	}
	return calls[0].cluster(ctx, req.identity)
}

// nodeView is what CLUSTER:STATUS reports about one node.
type nodeView struct {
	ID     uint32
	Host   string // address as host:port
	Role   string // "Leader", "Follower" or "Candidate"
	Commit uint64 // ledger events applied
	UpTime time.Duration
	// LastHeartbeat is the time since the node was last heard from (0 for
	// the node answering).
	LastHeartbeat time.Duration
	Self          bool // the node answering: its runtime figures are added
}

// clusterView is the input of clusterStatus: every node up, every node
// down (ID -> host) and the leader's ID (-1 = none).
type clusterView struct {
	Up       []nodeView
	Down     map[uint32]string
	LeaderID int64
}

// singleNode is the cluster view of a node that is not clustered: it is
// its own leader.
func (s *Server) singleNode() clusterView {
	return clusterView{
		Up:       []nodeView{{ID: 0, Host: s.host, Role: "Leader", Commit: s.proj.Seq(), UpTime: time.Since(s.start), Self: true}},
		LeaderID: 0,
	}
}

// clusterStatus builds the CLUSTER:STATUS answer for v.
func (s *Server) clusterStatus(_ context.Context, v clusterView) *wire.ClusterStatusResponse {
	nodes := make(map[uint32]string, len(v.Up)+len(v.Down))
	for _, n := range v.Up {
		nodes[n.ID] = n.Host
	}
	for id, h := range v.Down {
		nodes[id] = h
	}
	out := &wire.ClusterStatusResponse{NodesUp: make(map[uint32]wire.ServerStatusResponse, len(v.Up)), NodesDown: v.Down}
	for _, n := range v.Up {
		st := wire.ServerStatusResponse{
			Version: s.cfg.Version, APIVersion: "v1", Host: n.Host, UpTime: n.UpTime, Role: n.Role,
			Commit: n.Commit, Nodes: nodes, ID: n.ID, LeaderID: v.LeaderID, LastHeartbeat: n.LastHeartbeat,
		}
		if n.Self {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			st.OS, st.Arch = runtime.GOOS, runtime.GOARCH
			st.CPUs, st.UsableCPUs = uint32(runtime.NumCPU()), uint32(runtime.GOMAXPROCS(0))
			st.HeapMemInUse, st.StackMemInUse = ms.HeapInuse, ms.StackInuse
		}
		out.NodesUp[n.ID] = st
	}
	return out
}

// listVersions answers KEY:LISTVERSIONS. The request is a ListRequest
// whose Prefix is the key's exact name and whose ContinueAt is the first
// version to list in decimal ("" = from the oldest); the answer is a
// ListKeysResponse with one KeyStatusResponse per live version, oldest
// first, and ContinueAt the next version in decimal ("" at the end).
func (s *Server) listVersions(ctx context.Context, enclave string, m *wire.ListRequest) (message, error) {
	var from uint64
	if m.ContinueAt != "" {
		var err error
		if from, err = strconv.ParseUint(m.ContinueAt, 10, 32); err != nil {
			return nil, badRequest("invalid continue_at %q: want a version number", truncate(m.ContinueAt))
		}
	}
	limit := int(m.Limit)
	if limit <= 0 || limit > maxVersionPage {
		limit = maxVersionPage
	}
	out := &wire.ListKeysResponse{}
	err := s.keys.ReadKey(ctx, enclave, m.Prefix, func(k *projections.Key) error {
		for v := max(from, 1); v <= uint64(k.MaxVer); v++ {
			x := k.Version(uint32(v))
			if x == nil {
				continue
			}
			if len(out.Keys) == limit {
				out.ContinueAt = strconv.FormatUint(v, 10)
				return nil
			}
			out.Keys = append(out.Keys, wire.KeyStatusResponse{Name: k.Name, Version: x.Version, Type: x.Type, CreatedAt: x.CreatedAt(), CreatedBy: x.CreatedBy})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// maxVersionPage is the most versions one KEY:LISTVERSIONS answer holds.
const maxVersionPage = 1000
