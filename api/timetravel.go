package api

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
	authz "github.com/kmsledger/kmsledger/projections/access"
)

// The time-travel API answers questions about the past from the LEDGER,
// as JSON over GET on the same mTLS listener (bodies: the types of
// package client):
//
//	GET /v1/ledger/state?at=RFC3339|seq=N[&enclave=E]            client.LedgerState
//	GET /v1/ledger/who-can?enclave=E&key=K&command=C&at=T|seq=N   client.WhoCanResult
//	GET /v1/ledger/diff?from=T1|N1[&to=T2|N2][&enclave=E]         client.LedgerDiff
//	GET /v1/ledger/events?[enclave=&key=&identity=&type=&since=&until=&limit=&tail=]  client.LedgerEvents
//
// A point is a sequence number (the state after that event) or an RFC
// 3339 time (the state made of every event decided by then, see
// projections.StateAt). diff's "to" defaults to the head. events: since=N
// returns the events after sequence N, since=T those at or after T; until
// likewise (inclusive); type matches exactly or by a "prefix*" pattern;
// tail=N returns the last N matches instead of the first limit ones.
//
// Access (decided by the router before any parameter is parsed): the root
// identity reads everything. Anyone else must name an enclave (enclave=E;
// without it an identity of some enclave gets 400, anybody else 403) and be, in the current state, an Admin
// of it, an auditor of it (AuditorTag) or a service account of one of
// those; the answer is then restricted to that enclave, and to its
// current incarnation: an enclave deleted and created again under the
// same name is another tenant's history.

// AuditorTag and AuditorRole mark a read-only auditor: a User identity
// with the tag AuditorTag=AuditorRole, created by the root identity or by
// an Admin of the enclave, may read the time-travel API for its enclave
// (authz.IsAuditor, which says why it is a tag).
const (
	AuditorTag  = authz.AuditorTag
	AuditorRole = authz.AuditorRole
)

// Limits of the events endpoint.
const (
	defaultEventLimit = 1000
	maxEventLimit     = 10000
)

// ledgerScope is the part of the history a caller may read.
type ledgerScope struct {
	root    bool
	enclave string    // "" = every enclave and the system events (root only)
	created time.Time // non-root: creation time of the enclave's current incarnation
}

// ledgerAccess checks the caller id against the current state and
// returns what it may read of enclave ("" = everything, root only). The
// router calls it before the handler parses anything (routes.go). Without
// an enclave, a caller who is an identity of some enclave is told to name
// one (400); anybody else is refused (403).
func (s *Server) ledgerAccess(id, enclave string) (ledgerScope, error) {
	if id == "" {
		return ledgerScope{}, errPermission
	}
	var (
		sc  ledgerScope
		err error
	)
	s.proj.View(func(st *projections.State) {
		switch authz.ReadLedger(st, id, enclave) {
		case authz.LedgerAll:
			sc = ledgerScope{root: true, enclave: enclave}
		case authz.LedgerEnclave:
			sc = ledgerScope{enclave: enclave, created: st.Enclaves[enclave].CreatedAt}
		case authz.LedgerNameEnclave:
			err = badRequest("the enclave parameter is required")
		default:
			err = errPermission
		}
	})
	return sc, err
}

// restrict removes from st (a private past state) every enclave outside
// the scope.
func (sc ledgerScope) restrict(st *projections.State) {
	for name, e := range st.Enclaves {
		if (sc.enclave != "" && name != sc.enclave) || (!sc.root && !e.CreatedAt.Equal(sc.created)) {
			delete(st.Enclaves, name)
		}
	}
}

// sees reports whether the scope covers ev.
func (sc ledgerScope) sees(ev ledger.Event) bool {
	if sc.enclave == "" {
		return true
	}
	return projections.EventEnclave(ev) == sc.enclave && (sc.root || !ev.Time.Before(sc.created))
}

// pointParam reads the point of the state and who-can endpoints: exactly
// one of at (RFC 3339) and seq.
func pointParam(q url.Values) (client.Point, error) {
	at, seq := q.Get("at"), q.Get("seq")
	if (at == "") == (seq == "") {
		return client.Point{}, badRequest("give exactly one of at=RFC3339-time and seq=N")
	}
	if seq != "" {
		n, err := strconv.ParseUint(seq, 10, 64)
		if err != nil || n == 0 {
			return client.Point{}, badRequest("invalid seq %q: want a positive integer", seq)
		}
		return client.Point{Seq: n}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return client.Point{}, badRequest("invalid at %q: want an RFC 3339 time", at)
	}
	return client.Point{Time: t}, nil
}

// pastState rebuilds the state at p, restricted to the scope.
func (s *Server) pastState(ctx context.Context, sc ledgerScope, p client.Point) (*projections.State, error) {
	var (
		st  *projections.State
		err error
	)
	if sc.enclave != "" {
		st, err = s.proj.EnclaveStateAt(ctx, p.Seq, p.Time, sc.enclave) // decodes that enclave only
	} else {
		st, err = s.proj.StateAt(ctx, p.Seq, p.Time)
	}
	if errors.Is(err, projections.ErrBeyondHead) || errors.Is(err, projections.ErrPointInTime) {
		return nil, badRequest("%s", inputDetail(err))
	}
	if err != nil {
		return nil, err
	}
	sc.restrict(st)
	return st, nil
}

func (s *Server) handleLedgerState(w http.ResponseWriter, r *http.Request, in routeReq) {
	p, err := pointParam(r.URL.Query())
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	st, err := s.pastState(in.ctx, in.scope, p)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, r, s, jsonMessage{ledgerState(st)}, nil)
}

// ledgerState is the JSON view of a past state: no sealed material, no
// subject bookkeeping.
func ledgerState(st *projections.State) client.LedgerState {
	out := client.LedgerState{Seq: st.Seq, Enclaves: []client.EnclaveState{}}
	for _, name := range slices.Sorted(maps.Keys(st.Enclaves)) {
		e := st.Enclaves[name]
		es := client.EnclaveState{Name: e.Name, CreatedAt: e.CreatedAt, CreatedBy: e.CreatedBy,
			Keys: []wire.KeyInfo{}, Identities: []client.IdentityState{}, Policies: []client.PolicyState{}}
		for _, n := range slices.Sorted(maps.Keys(e.Keys)) {
			es.Keys = append(es.Keys, keyInfo(e.Keys[n]))
		}
		for _, n := range slices.Sorted(maps.Keys(e.Tombstones)) {
			t := e.Tombstones[n]
			es.Tombstones = append(es.Tombstones, client.TombstoneState{Name: t.Name, DestroyedAt: t.DestroyedAt,
				DestroyedBy: t.DestroyedBy, Reason: t.Reason})
		}
		for _, n := range slices.Sorted(maps.Keys(e.Identities)) {
			x := e.Identities[n]
			es.Identities = append(es.Identities, client.IdentityState{Identity: x.Identity, Privilege: x.Privilege,
				Policy: x.Policy, ServiceAccount: x.ServiceAccount, Parent: x.Parent, Tags: x.Tags,
				CreatedAt: x.CreatedAt, CreatedBy: x.CreatedBy})
		}
		for _, n := range slices.Sorted(maps.Keys(e.Policies)) {
			p := e.Policies[n]
			es.Policies = append(es.Policies, client.PolicyState{Name: p.Name, Allow: p.Allow, Deny: p.Deny,
				CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy})
		}
		out.Enclaves = append(out.Enclaves, es)
	}
	return out
}

func (s *Server) handleLedgerDiff(w http.ResponseWriter, r *http.Request, in routeReq) {
	q := r.URL.Query()
	from, err := client.ParsePoint(q.Get("from"))
	if err != nil || from.IsZero() {
		writeError(w, r, s.log, badRequest("invalid from %q: want a sequence number or an RFC 3339 time", q.Get("from")))
		return
	}
	to, err := client.ParsePoint(q.Get("to"))
	if err != nil {
		writeError(w, r, s.log, badRequest("invalid to %q: want a sequence number or an RFC 3339 time", q.Get("to")))
		return
	}
	ctx, sc := in.ctx, in.scope
	if to.IsZero() {
		if to.Seq, err = s.proj.Head(ctx); err != nil {
			writeError(w, r, s.log, err)
			return
		}
	}
	a, err := s.pastState(ctx, sc, from)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	b, err := s.pastState(ctx, sc, to)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := client.LedgerDiff{From: a.Seq, To: b.Seq, Changes: []client.Change{}}
	for _, c := range projections.Diff(a, b) {
		out.Changes = append(out.Changes, client.Change{Op: c.Op, Kind: c.Kind, Enclave: c.Enclave, Name: c.Name,
			Version: c.Version, Description: c.Description})
	}
	writeJSON(w, r, s, jsonMessage{out}, nil)
}

// eventQuery is a parsed events request.
type eventQuery struct {
	enclave, key, identity, typ string
	since, until                client.Point
	limit, tail                 int
}

func parseEventQuery(q url.Values) (eventQuery, error) {
	eq := eventQuery{enclave: q.Get("enclave"), key: q.Get("key"), identity: q.Get("identity"), typ: q.Get("type"),
		limit: defaultEventLimit}
	var err error
	if eq.since, err = client.ParsePoint(q.Get("since")); err != nil {
		return eq, badRequest("invalid since %q: want a sequence number or an RFC 3339 time", q.Get("since"))
	}
	if eq.until, err = client.ParsePoint(q.Get("until")); err != nil {
		return eq, badRequest("invalid until %q: want a sequence number or an RFC 3339 time", q.Get("until"))
	}
	for _, p := range []struct {
		name string
		v    *int
	}{{"limit", &eq.limit}, {"tail", &eq.tail}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxEventLimit {
				return eq, badRequest("invalid %s %q: want 1 to %d", p.name, v, maxEventLimit)
			}
			*p.v = n
		}
	}
	return eq, nil
}

// match reports whether ev passes the filters other than since and until.
func (eq eventQuery) match(ev ledger.Event) bool {
	if eq.enclave != "" && projections.EventEnclave(ev) != eq.enclave {
		return false
	}
	if eq.key != "" {
		encl, kind, name := aggregateParts(ev.Aggregate)
		if kind != "key" || name != eq.key || (eq.enclave != "" && encl != eq.enclave) {
			return false
		}
	}
	if eq.identity != "" && ev.Actor != eq.identity {
		if _, kind, name := aggregateParts(ev.Aggregate); kind != "identity" || name != eq.identity {
			return false
		}
	}
	return eq.typ == "" || matchAny([]string{eq.typ}, ev.Type)
}

// aggregateParts splits "ledger.<enclave>.<kind>.<name>".
func aggregateParts(subject string) (enclave, kind, name string) {
	parts := strings.SplitN(subject, ".", 4)
	if len(parts) != 4 {
		return "", "", ""
	}
	return parts[1], parts[2], parts[3]
}

func (s *Server) handleLedgerEvents(w http.ResponseWriter, r *http.Request, in routeReq) {
	eq, err := parseEventQuery(r.URL.Query())
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	ctx, sc := in.ctx, in.scope
	from := uint64(1)
	if eq.since.Seq != 0 {
		from = eq.since.Seq + 1
	}
	out := client.LedgerEvents{Events: []client.LedgerEvent{}}
	last, err := s.proj.Events(ctx, from, func(ev ledger.Event) bool {
		if eq.until.Seq != 0 && ev.Seq > eq.until.Seq {
			return false
		}
		if !sc.sees(ev) || !eq.match(ev) || ev.Time.Before(eq.since.Time) ||
			(!eq.until.Time.IsZero() && ev.Time.After(eq.until.Time)) {
			return true
		}
		if eq.tail == 0 && len(out.Events) == eq.limit {
			out.More = true
			return false
		}
		out.Events = append(out.Events, client.LedgerEvent{Seq: ev.Seq, Type: ev.Type, Time: ev.Time, Actor: ev.Actor,
			Enclave: ev.Enclave, Aggregate: ev.Aggregate, ID: ev.ID, CommandID: ev.CommandID, Payload: ev.Payload})
		if eq.tail > 0 && len(out.Events) == 2*eq.tail {
			out.Events = append(out.Events[:0], out.Events[eq.tail:]...)
		}
		return true
	})
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if eq.tail > 0 && len(out.Events) > eq.tail {
		out.Events = out.Events[len(out.Events)-eq.tail:]
	}
	out.Last = last
	writeJSON(w, r, s, jsonMessage{out}, nil)
}
