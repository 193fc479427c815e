package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/ledger"
)

// The request audit is read over the time-travel API (JSON, GET):
//
//	GET /v1/ledger/requests?[enclave=&key=&identity=&command=&result=&since=&until=&after=&limit=&tail=]  client.AuditRequests
//
// It returns the AUDIT records (audit.go) that match every filter, in
// stream order: enclave exactly; key = any item's key; identity = the
// client's; command = any item's command or the route, exactly or by a
// "prefix*" pattern; result = ok (2xx), denied (403), error (any other
// non-2xx) or an exact status. since=N selects the records of AUDIT
// messages after sequence N, since=T those of requests that arrived at or
// after T; until likewise (inclusive). after=N is the polling cursor (the
// "last" of a previous answer) and combines with a since time. tail=N
// returns the last N matches instead of the first limit ones.
//
// Access is that of /v1/ledger/events (ledgerAccess): root reads every
// record; an Admin or auditor of an enclave must name it and reads only
// the records of its current incarnation. A record belongs to the enclave
// of its path (kms and admin routes); a kms request without one in its
// path (/v1/kms) to DefaultEnclave, or, for enclave commands alone sent
// by root, to the enclave they name; records of other routes (KES, time
// travel, health) belong to no enclave and only root reads them. Records
// written before fields were cut or /v1/kms records carried an enclave
// read as they were stored.
//
// An answer ends at an AUDIT message boundary, so that "last" is a cursor
// that loses nothing: it may exceed limit only when one message alone
// holds more matches.

// errStopAudit ends a scan of AUDIT early; it never leaves this file.
var errStopAudit = errors.New("api: stop audit scan")

// requestQuery is a parsed requests query.
type requestQuery struct {
	eventQuery // enclave, key, identity, since, until, limit, tail
	command    string
	result     string
	status     int // result as an exact status; 0 = a class or none
	after      uint64
}

func parseRequestQuery(q url.Values) (requestQuery, error) {
	eq, err := parseEventQuery(q)
	if err != nil {
		return requestQuery{}, err
	}
	rq := requestQuery{eventQuery: eq, command: q.Get("command"), result: q.Get("result")}
	switch rq.result {
	case "", client.ResultOK, client.ResultDenied, client.ResultError:
	default:
		n, err := strconv.Atoi(rq.result)
		if err != nil || n < 100 || n > 599 {
			return rq, badRequest("invalid result %q: want ok, denied, error or an HTTP status", rq.result)
		}
		rq.status = n
	}
	if v := q.Get("after"); v != "" {
		if rq.after, err = strconv.ParseUint(v, 10, 64); err != nil {
			return rq, badRequest("invalid after %q: want an AUDIT sequence number", v)
		}
	}
	return rq, nil
}

// match reports whether r passes the filters other than the scope and
// the sequence bounds.
func (rq requestQuery) match(r *ledger.AuditRecord) bool {
	if rq.enclave != "" && r.Enclave != rq.enclave {
		return false
	}
	if rq.identity != "" && r.Identity != rq.identity {
		return false
	}
	if r.Time.Before(rq.since.Time) || (!rq.until.Time.IsZero() && r.Time.After(rq.until.Time)) {
		return false
	}
	if !rq.matchResult(r.Status) {
		return false
	}
	if rq.key == "" && rq.command == "" {
		return true
	}
	if rq.key == "" && r.Route != "" && matchAny([]string{rq.command}, r.Route) {
		return true
	}
	for _, it := range r.Items {
		if (rq.key == "" || it.Key == rq.key) && (rq.command == "" || matchAny([]string{rq.command}, it.Command)) {
			return true
		}
	}
	return false
}

func (rq requestQuery) matchResult(status int) bool {
	ok := status >= 200 && status < 300
	switch rq.result {
	case "":
		return true
	case client.ResultOK:
		return ok
	case client.ResultDenied:
		return status == http.StatusForbidden
	case client.ResultError:
		return !ok && status != http.StatusForbidden
	}
	return status == rq.status
}

// seesRecord reports whether the scope covers r.
func (sc ledgerScope) seesRecord(r *ledger.AuditRecord) bool {
	if sc.enclave == "" {
		return true
	}
	return r.Enclave == sc.enclave && (sc.root || !r.Time.Before(sc.created))
}

// handleAuditRequests serves GET /v1/ledger/requests; the router has
// decided access (ledgerAccess) and gives the scope.
func (s *Server) handleAuditRequests(w http.ResponseWriter, r *http.Request, in routeReq) {
	rq, err := parseRequestQuery(r.URL.Query())
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if s.cfg.Audit == nil {
		writeError(w, r, s.log, &statusError{http.StatusNotImplemented, "request audit is off on this server"})
		return
	}
	out, err := s.auditRequests(in.ctx, in.scope, rq)
	writeJSON(w, r, s, jsonMessage{out}, err)
}

// requestScan collects the matches of one query, a whole AUDIT message at
// a time.
type requestScan struct {
	rq      requestQuery
	out     client.AuditRequests
	cur     uint64                // the message being read (0 = none yet)
	pending []client.AuditRequest // matches in message cur
}

// auditRequests runs rq over AUDIT within the scope.
func (s *Server) auditRequests(ctx context.Context, sc ledgerScope, rq requestQuery) (client.AuditRequests, error) {
	from := max(rq.since.Seq, rq.after) + 1
	rs := requestScan{rq: rq, out: client.AuditRequests{Records: []client.AuditRequest{}, Last: from - 1}}
	err := s.cfg.Audit.Records(ctx, from, 0, func(seq uint64, rec ledger.AuditRecord) error {
		if seq != rs.cur {
			if !rs.commit() || (rq.until.Seq != 0 && seq > rq.until.Seq) {
				return errStopAudit
			}
			rs.cur = seq
		}
		if sc.seesRecord(&rec) && rq.match(&rec) {
			rs.pending = append(rs.pending, auditRequest(seq, &rec))
		}
		return nil
	})
	switch {
	case err == nil:
		rs.commit()
	case !errors.Is(err, errStopAudit):
		return client.AuditRequests{}, err
	}
	if rq.tail > 0 && len(rs.out.Records) > rq.tail {
		rs.out.Records = rs.out.Records[len(rs.out.Records)-rq.tail:]
	}
	return rs.out, nil
}

// commit adds the matches of message cur to the answer and moves Last to
// it, or reports false (and sets More) when they do not fit the limit.
func (rs *requestScan) commit() bool {
	if rs.cur == 0 {
		return true
	}
	recs := rs.out.Records
	switch {
	case rs.rq.tail > 0:
		recs = append(recs, rs.pending...)
		if len(recs) >= 2*rs.rq.tail {
			recs = append(recs[:0], recs[len(recs)-rs.rq.tail:]...)
		}
	case len(recs) > 0 && len(recs)+len(rs.pending) > rs.rq.limit:
		rs.out.More = true
		return false
	default:
		recs = append(recs, rs.pending...)
	}
	rs.out.Records, rs.out.Last, rs.pending = recs, rs.cur, rs.pending[:0]
	return true
}

// auditRequest is the JSON view of a record.
func auditRequest(seq uint64, r *ledger.AuditRecord) client.AuditRequest {
	out := client.AuditRequest{Seq: seq, Time: r.Time, Node: r.Node, Identity: r.Identity, Enclave: r.Enclave,
		Method: r.Method, Path: r.Path, Route: r.Route, Status: r.Status, Error: r.Error, Duration: r.Duration,
		Client: r.Client}
	if len(r.Items) > 0 {
		out.Items = make([]client.AuditRequestItem, len(r.Items))
		for i, it := range r.Items {
			out.Items[i] = client.AuditRequestItem{Command: it.Command, Key: it.Key, Version: it.Version, ADSHA256: it.ADSHA256,
				KeyLen: it.KeyLen}
		}
	}
	for _, c := range r.Truncated {
		out.Truncated = append(out.Truncated, client.AuditCut{Field: c.Field, Len: c.Len})
	}
	if d := r.Dropped; d != nil {
		out.Dropped = &client.AuditDrop{Bytes: d.Bytes, Reason: d.Reason}
	}
	return out
}
