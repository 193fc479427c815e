package api

import (
	"context"
	"encoding/json"
	"net/http"
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
//   - /v1/health/ready?write asks WriteReady.
type ClusterView struct {
	Stale      func() error
	WriteReady func(context.Context) error
	Status     func(context.Context) (*ledger.ClusterStatus, error)
	RemovePeer func(ctx context.Context, name string) error
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
