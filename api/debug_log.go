package api

// The log streams (root only; README.md, "Logs"):
//
//	POST /v1/debug/log   kms-go's Logs: body = one unframed LogRequest
//	                     (filters); answer = application/octet-stream,
//	                     [uint32 BE length][LogRecord] per record
//	GET  /v1/log/error   KES: application/x-ndjson, {"message": …} per record
//	GET  /v1/log/audit   KES: application/x-ndjson, one line per request from
//	                     the AUDIT stream: {"time","request":{"ip","path",
//	                     "identity"},"response":{"code","time"}} (time in µs)
//
// A stream runs until its client goes away, streamTimeout passes or the
// server shuts down.

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
)

const (
	// streamTimeout bounds one log stream.
	streamTimeout = 24 * time.Hour
	// maxLogRecord is the largest LogRecord kms-go reads.
	maxLogRecord = 4096
	// maxLogRequest bounds the body of POST /v1/debug/log.
	maxLogRequest = 4 << 10
	// auditPoll is how often /v1/log/audit looks for new AUDIT messages.
	auditPoll = 250 * time.Millisecond
)

// logFilter is a LogRequest's selection.
type logFilter struct{ wire.LogRequest }

// match reports whether e passes the filter: every set field must match
// (Message as a substring, the others exactly).
func (f *logFilter) match(e *logEntry) bool {
	switch {
	case f.Message != "" && !strings.Contains(e.Message, f.Message),
		f.Method != "" && !strings.EqualFold(f.Method, e.Method),
		f.Path != "" && f.Path != e.Path,
		f.Identity != "" && f.Identity != e.Identity,
		f.IP != "" && (!e.IP.IsValid() || f.IP != e.IP.String()):
		return false
	}
	return true
}

// logRecord is e as kms-go reads it: Req always set, with a valid IP,
// and an identity that is "" or an h1: identity; at most maxLogRecord
// bytes (the message is cut to fit).
func logRecord(e *logEntry) []byte {
	ip := e.IP
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	id := e.Identity
	if !strings.HasPrefix(id, "h1:") || len(id) != 46 {
		id = ""
	}
	rec := wire.LogRecord{Level: int32(e.Level), Time: e.Time, Message: e.Message,
		Req: &wire.LogRequestInfo{Method: truncate(e.Method), Path: truncate(e.Path), Identity: id, IP: ip.String()}}
	b := rec.MarshalProto()
	if over := len(b) - maxLogRecord; over > 0 {
		rec.Message = strings.ToValidUTF8(rec.Message[:max(0, len(rec.Message)-over-8)], "") + " …"
		b = rec.MarshalProto()
	}
	return b
}

// streamStart sends the header of a stream and reports whether the
// writer can flush.
func streamStart(w http.ResponseWriter, contentType string) http.Flusher {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	if f != nil {
		f.Flush()
	}
	return f
}

// handleDebugLog serves POST /v1/debug/log.
func (s *Server) handleDebugLog(w http.ResponseWriter, r *http.Request, in routeReq) {
	var f logFilter
	if err := f.UnmarshalProto(in.body); err != nil {
		writeError(w, r, s.log, badRequest("malformed log request: %s", inputDetail(err)))
		return
	}
	s.streamLog(w, r, in, slog.Level(f.Level), f.Since, func(e *logEntry) []byte {
		if !f.match(e) {
			return nil
		}
		b := logRecord(e)
		return append(binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b))), b...)
	}, "application/octet-stream")
}

// streamLog streams the hub's records from since on, each as render
// makes it (nil = skip), until the client goes away or in.ctx ends.
func (s *Server) streamLog(w http.ResponseWriter, r *http.Request, in routeReq, min slog.Level, since time.Time, render func(*logEntry) []byte, contentType string) {
	sub, past := s.logs.subscribe(min, since)
	defer s.logs.unsubscribe(sub)
	fl := streamStart(w, contentType)
	send := func(e *logEntry) bool {
		b := render(e)
		if b == nil {
			return true
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		if fl != nil {
			fl.Flush()
		}
		return true
	}
	for i := range past {
		if !send(&past[i]) {
			return
		}
	}
	for {
		select {
		case e := <-sub.ch:
			if !send(&e) {
				return
			}
		case <-r.Context().Done():
			return
		case <-in.ctx.Done():
			return
		case <-s.streamsEnd:
			return
		}
	}
}

// kesErrorLog serves KES's GET /v1/log/error: every record at INFO or
// above, as {"message": "<level> <message>"}.
func (k *kesAPI) errorLog(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	k.s.streamLog(w, r, *req, slog.LevelInfo, time.Time{}, func(e *logEntry) []byte {
		b, _ := json.Marshal(struct {
			Message string `json:"message"`
		}{e.Level.String() + " " + e.Message})
		return append(b, '\n')
	}, "application/x-ndjson")
}

// kesAuditLine is one line of KES's /v1/log/audit.
type kesAuditLine struct {
	Time    time.Time `json:"time"`
	Request struct {
		IP       string `json:"ip,omitempty"`
		Path     string `json:"path"`
		Identity string `json:"identity,omitempty"` // KES form: hex SHA-256
	} `json:"request"`
	Response struct {
		Code int   `json:"code"`
		Time int64 `json:"time"` // µs
	} `json:"response"`
}

// kesIdentity is the KES (hex) form of an h1: identity, or "".
func kesIdentity(h1 string) string {
	raw, ok := strings.CutPrefix(h1, "h1:")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) != 32 {
		return ""
	}
	return hex.EncodeToString(b)
}

// auditLog serves KES's GET /v1/log/audit: every request recorded in the
// AUDIT stream after the stream starts, read back from the stream.
func (k *kesAPI) auditLog(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	s := k.s
	if s.cfg.Audit == nil {
		k.fail(w, r, &statusError{http.StatusNotImplemented, "request audit is off on this server"})
		return
	}
	next, err := s.cfg.Audit.Head(req.ctx)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	next++
	fl := streamStart(w, "application/x-ndjson")
	t := time.NewTicker(auditPoll)
	defer t.Stop()
	for {
		var werr error
		err := s.cfg.Audit.Records(req.ctx, next, 0, func(seq uint64, rec ledger.AuditRecord) error {
			next = seq + 1
			var l kesAuditLine
			l.Time = rec.Time
			if ap, err := netip.ParseAddrPort(rec.Client); err == nil {
				l.Request.IP = ap.Addr().String()
			}
			l.Request.Path, l.Request.Identity = rec.Path, kesIdentity(rec.Identity)
			l.Response.Code, l.Response.Time = rec.Status, rec.Duration
			b, _ := json.Marshal(&l)
			_, werr = w.Write(append(b, '\n'))
			return werr
		})
		if werr != nil {
			return
		}
		if err != nil {
			s.log.Warn("KES audit log stream stopped", "err", err)
			return
		}
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-req.ctx.Done():
			return
		case <-s.streamsEnd:
			return
		}
	}
}
