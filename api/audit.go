package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kmsledger/kmsledger/ledger"
)

// Audit of every request. withAudit wraps the whole route table, so every
// API (kms, admin, KES, time travel, health) and every outcome (denials,
// bad requests, unknown routes) gets exactly one ledger.AuditRecord.
//
// The record is accepted by the Auditor before the answer leaves: the
// response is buffered until then (a handler that flushes streams from
// that point on, and its record follows its end). So in batched mode a
// crash loses at most AuditConfig.Batch records of answered requests, and
// in sync mode none. In sync mode a record that cannot be stored turns
// the answer into 503: the request may have taken effect, but it is not
// acknowledged unaudited.
//
// Handlers add what only they know through auditFrom(w): the kms
// endpoint one item per frame (command, key, version, SHA-256 of the
// associated data; see audit_kms.go); other handlers may set the enclave
// or items. A record never holds a body, associated data, plaintext,
// ciphertext or key.

// maxAuditItems bounds the items of one record (a kms batch may hold
// thousands of frames); the rest is counted in the error text.
const maxAuditItems = 1000

// maxAuditPath bounds the URL path kept in a record.
const maxAuditPath = 512

// auditInfo is the part of a request's record that handlers fill in.
type auditInfo struct {
	enclave string // overrides the {enclave} path value when set
	items   []ledger.AuditItem
	omitted int // items beyond maxAuditItems
}

// auditFrom returns the record under construction of the request that w
// answers, or nil when auditing is off. The record travels with the
// ResponseWriter the middleware hands to the routes, which costs nothing
// per request (a context value would cost a copy of the request).
func auditFrom(w http.ResponseWriter) *auditInfo {
	if aw, ok := w.(*auditWriter); ok {
		return &aw.info
	}
	return nil
}

// withAudit wraps h so that every request is recorded by cfg.Audit; with
// no Auditor it returns h.
func (s *Server) withAudit(h http.Handler) http.Handler {
	a := s.cfg.Audit
	if a == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		aw := &auditWriter{w: w}
		h.ServeHTTP(aw, r) // the mux sets r.Pattern and the path values on r
		rec := s.auditRecord(r, &aw.info, aw, start)
		if err := a.Record(r.Context(), rec); err != nil {
			s.log.Error("audit record not stored", "method", r.Method, "path", r.URL.Path, "err", err)
			if a.Sync() && !aw.streaming {
				aw.status, aw.buf = http.StatusServiceUnavailable, nil
				writeError(aw.w, r, s.log, &statusError{http.StatusServiceUnavailable, "audit record could not be stored"})
				return
			}
		}
		aw.finish()
	})
}

// auditRecord builds the record of a served request.
func (s *Server) auditRecord(r *http.Request, info *auditInfo, aw *auditWriter, start time.Time) *ledger.AuditRecord {
	rec := &ledger.AuditRecord{
		Time: start.UTC(), Node: s.host, Identity: identityOf(r), Enclave: info.enclave,
		Method: r.Method, Path: r.URL.Path, Route: r.Pattern, Items: info.items,
		Status: aw.status, Client: r.RemoteAddr,
	}
	if rec.Status == 0 {
		rec.Status = http.StatusOK
	}
	if rec.Enclave == "" {
		rec.Enclave = r.PathValue("enclave")
	}
	if len(rec.Path) > maxAuditPath {
		rec.Path = rec.Path[:maxAuditPath]
	}
	if rec.Items == nil {
		if name := r.PathValue("name"); name != "" {
			rec.Items = []ledger.AuditItem{{Command: r.Pattern, Key: name}}
		}
	}
	if rec.Status >= 400 {
		rec.Error = errorMessage(aw.buf)
	}
	if info.omitted > 0 {
		if rec.Error != "" {
			rec.Error += "; "
		}
		rec.Error += strconv.Itoa(info.omitted) + " more items not recorded"
	}
	rec.Duration = time.Since(start).Microseconds()
	return rec
}

// errorMessage extracts the message of an error body: {"message": …} or
// {"error": …} in JSON, or a short line of text (net/http's own errors).
func errorMessage(body []byte) string {
	if len(body) == 0 || len(body) > 4096 {
		return ""
	}
	if body[0] != '{' {
		text := strings.TrimSpace(string(body))
		if len(text) > 200 || strings.ContainsFunc(text, func(r rune) bool { return r < ' ' || r == 0x7f || r == utf8.RuneError }) {
			return ""
		}
		return text
	}
	var e struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	if e.Message != "" {
		return e.Message
	}
	return e.Error
}

// auditWriter holds a response back until its record is accepted: it
// keeps the status and the body and writes them in finish. Headers go
// straight to the real writer (nothing is sent before WriteHeader). If the
// handler flushes, the response streams from then on.
type auditWriter struct {
	w         http.ResponseWriter
	status    int
	buf       []byte
	streaming bool
	info      auditInfo
}

// Header implements http.ResponseWriter.
func (a *auditWriter) Header() http.Header { return a.w.Header() }

// WriteHeader implements http.ResponseWriter.
func (a *auditWriter) WriteHeader(code int) {
	if a.status != 0 || code < 200 {
		return
	}
	a.status = code
	if a.streaming {
		a.w.WriteHeader(code)
	}
}

// Write implements http.ResponseWriter.
func (a *auditWriter) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.WriteHeader(http.StatusOK)
	}
	if a.streaming {
		return a.w.Write(b)
	}
	a.buf = append(a.buf, b...)
	return len(b), nil
}

// Flush implements http.Flusher: what is buffered is sent, and the rest of
// the response streams.
func (a *auditWriter) Flush() {
	if !a.streaming {
		a.finish()
		a.streaming = true
	}
	if f, ok := a.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (a *auditWriter) Unwrap() http.ResponseWriter { return a.w }

// finish writes what was held back.
func (a *auditWriter) finish() {
	if a.streaming {
		return
	}
	if a.status == 0 {
		a.status = http.StatusOK
	}
	a.w.WriteHeader(a.status)
	if len(a.buf) > 0 {
		a.w.Write(a.buf)
	}
	a.buf = nil
}
