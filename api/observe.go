package api

// Metrics and the request log (README.md, "Metrics" and "Logs").
// withObserve is the outermost layer of the routes: it counts every
// request (api/metrics) and, at debug level, logs one line per request:
// method, route, path, status, identity, client, duration and sizes,
// never a body, a query or a header value.

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kmsledger/kmsledger/api/metrics"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/projections"
	authz "github.com/kmsledger/kmsledger/projections/access"
	"github.com/prometheus/common/expfmt"
)

// obsWriter records the status, the bytes written and the kms command of
// a request.
type obsWriter struct {
	w       http.ResponseWriter
	status  int
	written int64
	cmd     wire.Command
}

func (o *obsWriter) Header() http.Header { return o.w.Header() }

func (o *obsWriter) WriteHeader(code int) {
	if o.status == 0 && code >= 200 {
		o.status = code
	}
	o.w.WriteHeader(code)
}

func (o *obsWriter) Write(b []byte) (int, error) {
	if o.status == 0 {
		o.status = http.StatusOK
	}
	n, err := o.w.Write(b)
	o.written += int64(n)
	return n, err
}

// Flush implements http.Flusher (the log streams flush).
func (o *obsWriter) Flush() {
	if f, ok := o.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (o *obsWriter) Unwrap() http.ResponseWriter { return o.w }

var obsWriters = sync.Pool{New: func() any { return new(obsWriter) }}

// noteCommand records the kms command of the request w answers (the
// first frame's), for the metrics and the request log.
func noteCommand(w http.ResponseWriter, cmd wire.Command) {
	if aw, ok := w.(*auditWriter); ok {
		w = aw.w
	}
	if o, ok := w.(*obsWriter); ok {
		o.cmd = cmd
	}
}

// withObserve wraps h with the metrics and the request log.
func (s *Server) withObserve(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.metrics.Begin()
		o := obsWriters.Get().(*obsWriter)
		*o = obsWriter{w: w}
		defer func() {
			status := o.status
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			cmd := ""
			if o.cmd != 0 {
				cmd = o.cmd.String()
			}
			s.metrics.End(r.Pattern, cmd, status, d, r.ContentLength, o.written)
			if s.log.Enabled(r.Context(), slog.LevelDebug) {
				s.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
					slog.String("method", r.Method), slog.String("route", r.Pattern), slog.String("path", logPath(r)),
					slog.String("command", cmd), slog.Int("status", status), slog.String("identity", callerOf(r)),
					slog.String("remote", r.RemoteAddr), slog.Duration("duration", d),
					slog.Int64("request_bytes", r.ContentLength), slog.Int64("response_bytes", o.written))
			}
			*o = obsWriter{}
			obsWriters.Put(o)
		}()
		h.ServeHTTP(o, r)
	})
}

// handleMetrics serves GET /v1/health/metrics (and the server's part of
// KES's /v1/metrics): Prometheus text, or OpenMetrics when asked for.
// The router let only root and metrics readers through
// (authz.MayReadMetrics).
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request, _ routeReq) {
	s.metrics.ServeHTTP(w, r)
}

// snapshot reads the state the metrics report.
func (s *Server) snapshot() metrics.Snapshot {
	var out metrics.Snapshot
	s.proj.View(func(st *projections.State) {
		out.ProjectionSeq = st.Seq
		out.Enclaves = len(st.Enclaves)
		for _, e := range st.Enclaves {
			out.Keys += len(e.Keys)
			for _, k := range e.Keys {
				out.KeyVersions += len(k.Versions())
			}
			out.Identities += len(e.Identities)
			out.Policies += len(e.Policies)
		}
	})
	c := s.proj.KeyCacheStats()
	out.KeyCache = metrics.KeyCache{Capacity: c.Capacity, Size: c.Size, Hits: c.Hits, Misses: c.Misses, Evictions: c.Evictions, Primes: c.Primes}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if head, err := s.proj.Head(ctx); err == nil {
		out.LedgerHead = head
	} else {
		out.LedgerHead = out.ProjectionSeq
	}
	if a := s.cfg.Audit; a != nil {
		st := a.Stats()
		out.Audit = &metrics.Audit{Stored: st.Stored, Dropped: st.Dropped, Lost: st.Lost, Busy: st.Busy, Backlog: st.Backlog}
	}
	for _, c := range s.cfg.HSMs {
		h := metrics.HSM{Name: c.Name, Kind: c.Kind, Up: s.health.statusOf(c.Name) == "ok"}
		if counted, ok := c.W.(interface{ Calls() []metrics.HSMCalls }); ok {
			h.Calls = counted.Calls()
		}
		out.HSMs = append(out.HSMs, h)
	}
	if c := s.cfg.Cluster; c != nil && c.Status != nil {
		if st, err := c.Status(ctx); err == nil {
			for _, ss := range st.Streams {
				for _, p := range ss.Peers {
					out.Replicas = append(out.Replicas, metrics.Replica{Stream: ss.Name, Node: p.Name,
						Leader: p.Name == ss.Leader, Current: p.Current, Offline: p.Offline, Lag: p.Lag})
				}
			}
		}
	}
	return out
}

// mayReadMetrics reports whether id may scrape the metrics.
func (s *Server) mayReadMetrics(id string) bool {
	var ok bool
	s.proj.View(func(st *projections.State) { ok = authz.MayReadMetrics(st, id) })
	return ok
}

// appendMetricsText appends the server's metrics to b in the Prometheus
// text format (KES's /v1/metrics carries them after its own).
func (s *Server) appendMetricsText(b *strings.Builder) {
	mfs, err := s.metrics.Gatherer().Gather()
	if err != nil {
		s.log.Warn("metrics: gather", "err", err)
	}
	enc := expfmt.NewEncoder(b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			s.log.Warn("metrics: encode", "err", err)
			return
		}
	}
}
