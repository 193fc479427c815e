package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kmsledger/kmsledger/ledger"
)

// Audit of every request. withAudit wraps the whole route table, so every
// API (kms, admin, KES, time travel, health) and every outcome (denials,
// bad requests, unknown routes) gets exactly one ledger.AuditRecord.
//
// A request first takes a slot of the Auditor (ledger.Auditor.Reserve):
// one that cannot get one within AuditConfig.Wait (or its own deadline)
// is not served at all but answered 503, and nothing happened. Once
// served, its record is committed into the slot, which never waits for
// room and does not depend on the client (a client that half-closes or
// goes away still has its record accepted; in sync mode the store is
// awaited under a context of its own). The response is buffered until
// then: no answer leaves before its record is accepted (a handler that
// flushes streams from that point on, and its record follows its end).
// So in batched mode a crash loses at most AuditConfig.Batch records of
// answered requests, and in sync mode none. A record that cannot be
// accepted (sync mode: stored) turns the answer into 503: the request may
// have taken effect, but it is not acknowledged unaudited.
//
// Handlers add what only they know through auditFrom(w): the kms
// endpoint one item per frame (command, key, version, SHA-256 of the
// associated data; see audit_kms.go); other handlers may set the enclave
// or items. A record never holds a body, associated data, plaintext,
// ciphertext or key. Every field a client influences is cut by the
// ledger to keep the record bounded (ledger.MaxAuditRecord), with the
// original length recorded.

// maxAuditItems bounds the items of one record (a kms batch may hold
// thousands of frames); the rest is counted in the record's "truncated"
// list and in the error text.
const maxAuditItems = 1000

// auditCommitTimeout bounds how long a sync-mode request waits for its
// record to be stored, whatever its client does.
const auditCommitTimeout = requestTimeout

// auditInfo is the part of a request's record that handlers fill in.
type auditInfo struct {
	enclave  string // overrides the {enclave} path value when set
	identity string // overrides the certificate's identity when set (Transit tokens)
	items    []ledger.AuditItem
	omitted  int // items beyond maxAuditItems

	// Set by auditCalls for the kms endpoint (audit_kms.go).
	kms       bool
	scoped    bool   // a key, policy or identity command: acts in the request's enclave
	named     string // the enclave that enclave commands name, if they all name one
	namedMany bool   // enclave commands name several enclaves (or none)
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
		slot, err := a.Reserve(r.Context())
		if err != nil {
			// Not served: its record could not be kept.
			s.log.Warn("request refused: no audit record slot", "method", r.Method, "remote", r.RemoteAddr, "err", err)
			msg := "audit is busy: request not served"
			if errors.Is(err, ledger.ErrClosed) {
				msg = "audit is stopped: request not served"
			} else {
				w.Header().Set("Retry-After", "1")
			}
			writeError(w, r, s.log, &statusError{http.StatusServiceUnavailable, msg})
			return
		}
		defer slot.Release() // gives the slot back if the handler panics; nothing after Commit
		aw := auditWriters.Get().(*auditWriter)
		defer aw.release()
		aw.w = w
		h.ServeHTTP(aw, r) // the mux sets r.Pattern and the path values on r
		rec := s.auditRecord(r, &aw.info, aw, start)
		if a.Sync() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditCommitTimeout)
			err = slot.Commit(ctx, rec)
			cancel()
		} else {
			err = slot.Commit(context.Background(), rec) // batched: Commit buffers, it never waits
		}
		if err != nil {
			s.log.Error("audit record not stored", "method", r.Method, "route", r.Pattern, "remote", r.RemoteAddr, "err", err)
			if !aw.streaming {
				clear(aw.buf) // the answer that is not sent may hold a data key
				aw.status, aw.buf = http.StatusServiceUnavailable, aw.buf[:0]
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
	if info.identity != "" {
		rec.Identity = info.identity
	}
	if rec.Enclave == "" {
		rec.Enclave = r.PathValue("enclave")
	}
	if rec.Enclave == "" && (info.kms || isKMSWithoutEnclave(r)) {
		rec.Enclave = s.kmsAuditEnclave(rec.Identity, info)
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
		rec.Truncated = []ledger.AuditCut{{Field: "items", Len: len(info.items) + info.omitted}}
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
		Message string   `json:"message"`
		Error   string   `json:"error"`
		Errors  []string `json:"errors"` // Transit
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	if e.Message != "" {
		return e.Message
	}
	if len(e.Errors) > 0 {
		return strings.Join(e.Errors, "; ")
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
		a.w.Write(a.buf) // copied into the connection's buffer
	}
	clear(a.buf) // may hold a data key
	a.buf = a.buf[:0]
}

// auditWriters are reused: one per request would be garbage, and so
// would the buffer of each answer.
var auditWriters = sync.Pool{New: func() any { return new(auditWriter) }}

// maxPooledAnswer is the largest answer buffer kept for the next request.
const maxPooledAnswer = 64 << 10

// release clears a (its buffer may hold a data key) and gives it back
// for another request. It runs when the request is over, after a panic
// too; a is not used afterwards.
func (a *auditWriter) release() {
	buf := a.buf[:cap(a.buf)]
	clear(buf)
	if cap(buf) > maxPooledAnswer {
		buf = nil
	}
	*a = auditWriter{buf: buf[:0]}
	auditWriters.Put(a)
}
