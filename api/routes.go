package api

// The route table. Every HTTP API of the server (kms, key admin, HSM admin,
// time travel, request audit, health, version and, with
// Config.KESEnclave, KES) is a row of routeTable, and every request goes
// through one serve path, in this order:
//
//  1. deadline: the row's timeout (capped by Limits.RequestTimeout) sets
//     the connection's read deadline (which covers the body), its write
//     deadline (plus writeGrace, so that a late error still goes out) and
//     the deadline of the request context. Under Serve, the deadlines
//     net/http sets for every request (http.Server.ReadTimeout and
//     WriteTimeout: requestTimeout plus HeaderTimeout from the request's
//     start, requestTimeout plus writeGrace after its header) already
//     bound the rows of timeout requestTimeout: those set no write
//     deadline, and a read deadline only when they read a body;
//  2. method (KES rows; other rows match their method in the pattern);
//  3. caller: the first client certificate (callerOf);
//  4. access: the row's rule, decided on the current state;
//  5. body: a Content-Length above the row's limit is refused (413) before
//     anything is read; otherwise the body is read while it streams in,
//     into memory that grows with what arrives (never sized from the
//     client's Content-Length), and refused past the limit (413), when
//     short of its Content-Length (400) or slower than the deadline (408);
//     a stream row (a /v1/db upload) instead hands its handler r.Body,
//     cut at the limit, to read as it arrives;
//  6. the handler, which gets the caller, enclave, argument, body and, for
//     the time-travel rows, the readable scope in a routeReq. It never
//     reads r.Body (the router replaces it by http.NoBody), except on a
//     stream row.
//
// A request refused before its body was read is answered with
// "Connection: close", so that the server does not read that body either.
// The metrics and request log (observe.go) and the audit middleware
// (audit.go) wrap every route: Routes returns withObserve(withAudit(mux)).

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/projections"
)

// Timeouts of the routes (per request, including the body).
const (
	// requestTimeout bounds one request of the kms, admin and time-travel
	// APIs, including waiting for the ledger.
	requestTimeout = 30 * time.Second
	// infoTimeout bounds /version and the health routes.
	infoTimeout = 10 * time.Second
	// writeGrace is how long past its deadline a request may still write
	// its answer (the error a handler returns when its context ends).
	writeGrace = 5 * time.Second
	// bodyChunk is the most the router allocates for a body before any of
	// it has arrived; beyond it the buffer grows with what is received.
	bodyChunk = 16 << 10
)

// access says who may call a route.
type access uint8

const (
	accessOpen     access = iota // anyone, without a certificate (handlers named …NoAuth)
	accessIdentity               // any client certificate
	accessRoot                   // the root identity
	accessAdmin                  // root, an Admin of the enclave, or a service account of either (isAdmin)
	accessMember                 // root or any identity of the enclave
	accessCommand                // authorize: every command of cmds on the resource
	accessLedger                 // root, or an Admin or auditor of the enclave named by ?enclave= (ledgerAccess)
	accessMetrics                // root, or a metrics reader (authz.MayReadMetrics)
)

var accessNames = [...]string{"open", "identity", "root", "admin", "member", "command", "ledger", "metrics"}

func (a access) String() string { return accessNames[a] }

// route is one row of the route table.
type route struct {
	pattern string // ServeMux pattern: "METHOD /path"; KES rows: the path, the method is method
	access  access
	cmds    []wire.Command // accessCommand: each must be allowed on the resource
	enclave string         // the enclave access is decided in; "" = the {enclave} path value
	arg     kesArg         // the resource: argNone, argPathName ({name}) or a KES argument ({arg...})
	maxBody int64          // 0 = the body is not read
	// streamBody: the handler reads r.Body itself, as it arrives (at
	// most maxBody bytes, before the deadline), instead of routeReq.body.
	streamBody bool
	timeout    time.Duration
	handle     func(w http.ResponseWriter, r *http.Request, in routeReq)

	method string    // KES rows: the declared method (where it is PUT, POST is accepted too)
	path   string    // KES rows: the path as /v1/api lists it
	kes    *kesAPI   // KES rows: KES errors, method rule and metrics
	vault  *vaultAPI // Transit rows: the caller from a token, Vault errors (transit.go)
	srv    *Server

	// stream: the answer is a stream (log routes) whose timeout
	// Limits.RequestTimeout does not cap.
	stream bool

	// ownDeadlines: the row sets the connection's deadlines whether or
	// not it reads a body (false when the server's ReadTimeout and
	// WriteTimeout already are the row's).
	ownDeadlines bool
}

// routeReq is what the router hands a handler once access is decided.
type routeReq struct {
	ctx      context.Context // ends at the route's deadline
	identity string          // h1: identity of the caller; "" without a certificate (open routes)
	enclave  string          // the enclave access was decided in
	arg      string          // the resource: {name}, or the validated KES argument (identities in h1: form)
	body     []byte          // at most the route's maxBody; cleared when the handler returns
	scope    ledgerScope     // accessLedger: what the caller may read
}

// kesRequest is the routeReq of a KES route.
type kesRequest = routeReq

// routeTable returns every route of the server. Handlers are bound here,
// once; nothing in it is built per request.
func (s *Server) routeTable() []route { return s.routeRows(false) }

// routeRows is routeTable; serveBounded says the routes run under Serve,
// whose http.Server sets the read and write deadlines of the longest
// rows for each request (Serve: ReadTimeout, WriteTimeout).
func (s *Server) routeRows(serveBounded bool) []route {
	kmsRoute := func(pattern, enclave string) route {
		return route{pattern: pattern, access: accessMember, enclave: enclave, maxBody: MaxBody, timeout: requestTimeout, handle: s.handleKMS}
	}
	admin := func(pattern string, a access, arg kesArg, maxBody int64, h func(http.ResponseWriter, *http.Request, routeReq), cmds ...wire.Command) route {
		return route{pattern: pattern, access: a, cmds: cmds, arg: arg, maxBody: maxBody, timeout: requestTimeout, handle: h}
	}
	ledgerRoute := func(pattern string, h func(http.ResponseWriter, *http.Request, routeReq)) route {
		return route{pattern: pattern, access: accessLedger, timeout: requestTimeout, handle: h}
	}
	rows := []route{
		{pattern: "GET /version", access: accessOpen, timeout: infoTimeout, handle: s.handleVersionNoAuth},
		{pattern: "GET /v1/health/live", access: accessOpen, timeout: infoTimeout, handle: s.handleLiveNoAuth},
		{pattern: "GET /v1/health/ready", access: accessOpen, timeout: infoTimeout, handle: s.handleReadyNoAuth},
		{pattern: "GET /v1/health/metrics", access: accessMetrics, timeout: infoTimeout, handle: s.handleMetrics},

		// Debug and cluster operations of the kms API (debug.go,
		// debug_log.go): root only. /v1/db rows belong to backup.
		{pattern: "POST /v1/debug/pprof", access: accessRoot, timeout: infoTimeout, handle: s.handleProfileStart},
		{pattern: "GET /v1/debug/pprof", access: accessRoot, timeout: infoTimeout, handle: s.handleProfileStatus},
		{pattern: "DELETE /v1/debug/pprof", access: accessRoot, timeout: requestTimeout, handle: s.handleProfileStop},
		{pattern: "POST /v1/debug/log", access: accessRoot, maxBody: maxLogRequest, timeout: streamTimeout, handle: s.handleDebugLog, stream: true},
		{pattern: "POST /v1/debug/restart", access: accessRoot, timeout: infoTimeout, handle: s.handleRestart},

		// kms API: who is no member of the enclave is refused before the
		// body is read; each frame is authorised by handleKMS.
		kmsRoute("POST /v1/kms", DefaultEnclave),
		kmsRoute("POST /v1/kms/", DefaultEnclave),
		kmsRoute("POST /v1/kms/{enclave}", ""),

		// Key admin API (admin.go).
		admin("GET /v1/admin/{enclave}/keys", accessCommand, argNone, 0, s.handleAdminKeyList, wire.CmdKeyList),
		admin("GET /v1/admin/{enclave}/keys/{name}", accessCommand, argPathName, 0, s.handleAdminKeyInfo, wire.CmdKeyStatus),
		admin("POST /v1/admin/{enclave}/keys/{name}/import", accessAdmin, argPathName, maxAdminBody, s.handleAdminKeyImport),
		admin("POST /v1/admin/{enclave}/keys/{name}/rewrap", accessCommand, argPathName, maxAdminBody, s.handleAdminKeyRewrap,
			wire.CmdKeyDecrypt, wire.CmdKeyEncrypt),
		admin("POST /v1/admin/{enclave}/keys/{name}/disable", accessAdmin, argPathName, maxAdminBody, s.handleKeyAction(disableKey)),
		admin("POST /v1/admin/{enclave}/keys/{name}/enable", accessAdmin, argPathName, maxAdminBody, s.handleKeyAction(enableKey)),
		admin("POST /v1/admin/{enclave}/keys/{name}/schedule-deletion", accessAdmin, argPathName, maxAdminBody, s.handleKeyAction(scheduleKeyDeletion)),
		admin("POST /v1/admin/{enclave}/keys/{name}/restore", accessAdmin, argPathName, maxAdminBody, s.handleKeyAction(restoreKey)),
		admin("POST /v1/admin/{enclave}/keys/{name}/release", accessAdmin, argPathName, maxAdminBody, s.handleKeyAction(releaseKeyName)),
		// Any other action: 404 "unknown key action" (after the Admin check).
		admin("POST /v1/admin/{enclave}/keys/{name}/{action}", accessAdmin, argPathName, maxAdminBody, s.handleUnknownKeyAction),

		// HSM admin API (hsm_admin.go).
		admin("GET /v1/admin/hsm", accessRoot, argNone, 0, s.handleHSMList),
		admin("POST /v1/admin/hsm/{name}", accessRoot, argPathName, 0, s.handleHSMAdd),
		admin("DELETE /v1/admin/hsm/{name}", accessRoot, argPathName, 0, s.handleHSMRemove),

		// Time travel (timetravel*.go) and the request audit (audit_query.go).
		ledgerRoute("GET /v1/ledger/state", s.handleLedgerState),
		ledgerRoute("GET /v1/ledger/who-can", s.handleWhoCan),
		ledgerRoute("GET /v1/ledger/diff", s.handleLedgerDiff),
		ledgerRoute("GET /v1/ledger/events", s.handleLedgerEvents),
		ledgerRoute("GET /v1/ledger/requests", s.handleAuditRequests),
		{pattern: "GET /v1/ledger/verify", access: accessRoot, timeout: verifyTimeout, handle: s.handleLedgerVerify},
		{pattern: "GET /v1/cluster/status", access: accessRoot, timeout: infoTimeout, handle: s.handleClusterStatus},

		// Backups (db.go): GET is kms-go ReadDB, PUT (or POST) WriteDB.
		{pattern: "GET /v1/db", access: accessRoot, timeout: dbTimeout, handle: s.handleDBRead},
		{pattern: "PUT /v1/db", access: accessRoot, maxBody: s.maxDBUpload(), streamBody: true, timeout: dbTimeout, handle: s.handleDBWrite},
		{pattern: "POST /v1/db", access: accessRoot, maxBody: s.maxDBUpload(), streamBody: true, timeout: dbTimeout, handle: s.handleDBWrite},
	}
	if s.cfg.KESEnclave != "" {
		k := &kesAPI{s: s, enclave: s.cfg.KESEnclave, start: time.Now()}
		k.routes = kesRoutes(k)
		rows = append(rows, k.muxRoutes()...)
	}
	rows = append(rows, s.transitRoutes()...)
	for i := range rows {
		rows[i].srv = s
		if limit := s.cfg.Limits.RequestTimeout; limit > 0 && rows[i].timeout > limit && !rows[i].stream {
			rows[i].timeout = limit
		}
		rows[i].ownDeadlines = !serveBounded || rows[i].timeout != requestTimeout
	}
	return rows
}

// Routes returns the handler of every route, inside the audit middleware
// (one audit record per request, whatever the route: audit.go).
func (s *Server) Routes() http.Handler { return s.routes(false) }

// routes is Routes; serveBounded: see routeRows.
func (s *Server) routes(serveBounded bool) http.Handler {
	mux := http.NewServeMux()
	rows := s.routeRows(serveBounded)
	for i := range rows {
		mux.Handle(rows[i].pattern, &rows[i])
	}
	return s.withObserve(s.withAudit(mux)) // observe.go, audit.go
}

// ServeHTTP implements http.Handler: the one serve path of every route.
func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	deadline := time.Now().Add(rt.timeout)
	if rt.maxBody > 0 || rt.ownDeadlines {
		// Not supported by test recorders: then the context alone bounds
		// the request.
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(deadline)
		if rt.ownDeadlines {
			rc.SetWriteDeadline(deadline.Add(writeGrace))
		}
	}
	if len(rt.cmds) > 0 {
		noteCommand(w, rt.cmds[0]) // observe.go
	}
	if rt.kes != nil {
		rec := rt.kes.begin(w)
		defer rt.kes.end(rec)
		w = rec
	}
	if rt.method != "" && r.Method != rt.method && (rt.method != http.MethodPut || r.Method != http.MethodPost) {
		w.Header().Set("Accept", rt.method)
		rt.refuse(w, r, &statusError{http.StatusMethodNotAllowed, "method not allowed"})
		return
	}
	in := routeReq{identity: callerOf(r)}
	if rt.vault != nil {
		id, err := rt.vault.caller(w, r)
		if err != nil {
			rt.refuse(w, r, err)
			return
		}
		in.identity = id
	}
	if err := rt.admit(r, &in); err != nil {
		rt.refuse(w, r, err)
		return
	}
	// Once admitted, a request runs until it is done or its deadline
	// passes, not until its client goes away: a write cancelled halfway
	// would leave its outcome unknown to the server itself.
	ctx := newReqContext(r.Context(), deadline) // reqctx.go
	defer ctx.end()
	in.ctx = ctx
	if rt.streamBody {
		if r.ContentLength > rt.maxBody {
			rt.refuse(w, r, &http.MaxBytesError{Limit: rt.maxBody})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, rt.maxBody)
		rt.handle(w, r, in)
		return
	}
	if rt.maxBody > 0 {
		b, err := readBody(r, rt.maxBody)
		if err != nil {
			rt.refuse(w, r, err)
			return
		}
		in.body = b
		defer clear(b) // may hold plaintext or key material
	}
	r.Body = http.NoBody
	rt.handle(w, r, in)
}

// refuse answers err in the route's API (KES or kms error bodies). An
// unread body is left unread: the connection closes after the answer.
func (rt *route) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if r.ContentLength != 0 && r.Body != http.NoBody {
		w.Header().Set("Connection", "close")
	}
	if rt.kes != nil {
		rt.kes.fail(w, r, err)
		return
	}
	if rt.vault != nil {
		rt.vault.fail(w, r, err)
		return
	}
	writeError(w, r, rt.srv.log, err)
}

// admit authenticates the caller, resolves the enclave and the resource,
// and decides access; it fills in.
func (rt *route) admit(r *http.Request, in *routeReq) error {
	if rt.access == accessOpen {
		return nil
	}
	if in.identity == "" {
		if rt.kes != nil {
			_, err := kesCaller(r) // KES's own 400s for a missing certificate
			return err
		}
		return errPermission
	}
	in.enclave = rt.enclave
	if in.enclave == "" {
		in.enclave = r.PathValue("enclave")
	}
	s := rt.srv
	if rt.access == accessMetrics {
		if !rt.srv.mayReadMetrics(in.identity) {
			return errPermission
		}
		return nil
	}
	if rt.access == accessLedger {
		var err error
		in.scope, err = s.ledgerAccess(in.identity, r.URL.Query().Get("enclave"))
		return err
	}
	if err := s.checkFresh(); err != nil { // cluster.go
		return err
	}
	return s.decideCurrent(r.Context(), func(st *projections.State) error { return rt.decide(st, r, in) })
}

// decide applies the route's access rule to the caller in st. Who is
// neither root nor an identity of the enclave is refused before the path
// argument is looked at.
func (rt *route) decide(st *projections.State, r *http.Request, in *routeReq) error {
	id := in.identity
	root := id == st.RootIdentity
	switch rt.access {
	case accessAdmin, accessMember, accessCommand:
		if e := st.Enclaves[in.enclave]; !root && (e == nil || e.Identities[id] == nil) {
			return errPermission
		}
	}
	switch rt.arg {
	case argNone:
	case argPathName:
		in.arg = r.PathValue("name")
	default:
		in.arg = r.PathValue("arg")
		if err := in.validateArg(rt.arg); err != nil {
			return err
		}
	}
	if root {
		return nil
	}
	switch rt.access {
	case accessIdentity, accessMember:
		return nil
	case accessAdmin:
		if isAdmin(st, id, in.enclave) {
			return nil
		}
	case accessCommand:
		resource := in.arg
		if rt.arg == argPattern {
			resource = ""
		}
		for _, c := range rt.cmds {
			if err := authorize(st, id, in.enclave, c, resource); err != nil {
				return err
			}
		}
		return nil
	}
	return errPermission
}

// readBody reads a request body of at most limit bytes. A Content-Length
// above the limit is refused before anything is read. The buffer starts
// at most bodyChunk large and grows with what arrives, so a client that
// announces a large body and sends little costs little.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	size := int64(512)
	if r.ContentLength >= 0 {
		size = min(r.ContentLength, bodyChunk) + 1 // +1: room to see EOF
	}
	b := make([]byte, 0, size)
	src := io.LimitedReader{R: r.Body, N: limit + 1}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := src.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			clear(b)
			return nil, bodyError(err)
		}
	}
	if int64(len(b)) > limit {
		clear(b)
		return nil, &http.MaxBytesError{Limit: limit}
	}
	return b, nil
}

// bodyError turns a failure to read a body into a client error: the
// client sent less than it announced, too slowly, or went away.
func bodyError(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &statusError{http.StatusRequestTimeout, "request body not received before the deadline"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("request body shorter than its Content-Length")
	}
	return badRequest("request body could not be read")
}
