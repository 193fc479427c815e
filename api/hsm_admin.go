package api

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/projections"
)

// The root-of-trust admin API (root only):
//
//	GET    /v1/admin/hsm          every HSM the REK is sealed under, and every configured one, with health
//	POST   /v1/admin/hsm/{name}   seal the REK under the configured HSM {name} (add-hsm)
//	DELETE /v1/admin/hsm/{name}   stop using the sealing under {name} (rm-hsm); the last one is refused
//
// The router (routes.go) lets only the root identity through.

func (s *Server) handleHSMList(w http.ResponseWriter, r *http.Request, _ routeReq) {
	out := wire.HSMList{HSMs: []wire.HSMInfo{}}
	seen := map[string]bool{}
	s.proj.View(func(st *projections.State) {
		for _, x := range st.HSMs {
			info := wire.HSMInfo{Name: x.Name, Kind: x.Kind, KeyID: x.KeyID, Sealed: true, AddedAt: x.AddedAt, AddedBy: x.AddedBy}
			seen[x.KeyID] = true
			if c := s.configuredHSM(x.KeyID); c != nil {
				info.Configured, info.Status = true, s.health.statusOf(c.Name)
			}
			out.HSMs = append(out.HSMs, info)
		}
	})
	for _, c := range s.cfg.HSMs {
		if !seen[c.W.KeyID()] {
			out.HSMs = append(out.HSMs, wire.HSMInfo{Name: c.Name, Kind: c.Kind, KeyID: c.W.KeyID(), Configured: true, Status: s.health.statusOf(c.Name)})
		}
	}
	slices.SortFunc(out.HSMs, func(a, b wire.HSMInfo) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.KeyID, b.KeyID))
	})
	writeJSON(w, r, s, jsonMessage{out}, nil)
}

func (s *Server) configuredHSM(keyID string) *commands.NamedHSM {
	for i := range s.cfg.HSMs {
		if s.cfg.HSMs[i].W.KeyID() == keyID {
			return &s.cfg.HSMs[i]
		}
	}
	return nil
}

func (s *Server) handleHSMAdd(w http.ResponseWriter, r *http.Request, in routeReq) {
	if err := s.addHSM(in.ctx, in.identity, in.arg); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeBody(w, "application/json", []byte("{}"))
}

// addHSM seals the REK under the configured HSM name (add-hsm, and the
// kms API's CLUSTER:ADDHSM).
func (s *Server) addHSM(ctx context.Context, identity, name string) error {
	i := slices.IndexFunc(s.cfg.HSMs, func(h commands.NamedHSM) bool { return h.Name == name })
	if i < 0 {
		return &statusError{http.StatusNotFound, "no HSM named " + name + " is configured on this node (add it to the config and restart first)"}
	}
	if err := s.h.AddHSM(ctx, identity, s.cfg.HSMs[i]); err != nil {
		if refused(err) {
			return err
		}
		// The HSM itself failed (unreachable, locked, ...): say which and
		// why; HSM errors name no secrets.
		s.log.Error("add-hsm failed", "hsm", name, "err", err)
		why, ok := clientMessage(err)
		if !ok {
			why = err.Error()
		}
		return &statusError{http.StatusBadGateway, fmt.Sprintf("HSM %q failed: %s", name, why)}
	}
	return nil
}

func (s *Server) handleHSMRemove(w http.ResponseWriter, r *http.Request, in routeReq) {
	if err := s.h.RemoveHSM(in.ctx, in.identity, in.arg); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeBody(w, "application/json", []byte("{}"))
}

// hsmHealth checks the configured HSMs now and then. An HSM outage after
// start does not stop crypto (the REK is unsealed in memory); it is
// logged and shown by /v1/health/ready and ls-hsm.
type hsmHealth struct {
	mu     sync.Mutex
	status map[string]string // name -> "ok" or the error
}

func (h *hsmHealth) statusOf(name string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.status[name]
}

func (s *Server) checkHSMs(ctx context.Context) {
	for _, c := range s.cfg.HSMs {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ct, err := c.W.Wrap(cctx, []byte("kmsledger health"), []byte("health"))
		if err == nil {
			_, err = c.W.Unwrap(cctx, ct, []byte("health"))
		}
		cancel()
		st := "ok"
		if err != nil {
			st = err.Error()
		}
		s.health.mu.Lock()
		prev := s.health.status[c.Name]
		s.health.status[c.Name] = st
		s.health.mu.Unlock()
		switch {
		case err != nil && prev != st:
			s.log.Warn("HSM unavailable (running crypto is not affected: the REK is unsealed)", "hsm", c.Name, "err", err)
		case err == nil && prev != "" && prev != "ok":
			s.log.Info("HSM available again", "hsm", c.Name)
		}
	}
}

// runHSMHealth checks the HSMs every interval until ctx ends.
func (s *Server) runHSMHealth(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.checkHSMs(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
