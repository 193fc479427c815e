package api

// Server endpoints of the KES API (/v1/ready, /v1/status, /v1/metrics,
// /v1/api), its metrics, and its error answers (README.md, "Migrating from KES, and the KES API").

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm"
)

// kesErrorTable is an overlay of errorTable for the KES API: it holds
// only the rows where KES clients expect another status or message
// (the well-known errors of the KES SDK), e.g. every "key already exists" is
// KES's 400 and a refusal is "not authorized". kesErrorOf looks an error
// up here first and then in errorTable, so every domain error of the kms
// API has a KES answer too; statusError and http.MaxBytesError are
// handled before both, and anything else is a logged 500.
var kesErrorTable = []errorEntry{
	{errPermission, http.StatusForbidden, "not authorized: insufficient permissions"},
	{commands.ErrKeyExists, http.StatusBadRequest, "key already exists"},
	{commands.ErrUnchanged, http.StatusBadRequest, "key already exists"},
	{commands.ErrSkipped, http.StatusBadRequest, "key already exists"},
	{commands.ErrKeyTombstoned, http.StatusBadRequest, "key already exists: the name belongs to a destroyed key and stays reserved until an admin releases it"},
	{hsm.ErrDecrypt, http.StatusBadRequest, "decryption failed: ciphertext is not authentic"},
	{hsm.ErrInvalidKeyType, http.StatusNotAcceptable, "algorithm is not supported"},
	{hsm.ErrInvalidKeyMaterial, http.StatusNotAcceptable, "invalid key size"},
	{commands.ErrInvalidName, http.StatusBadRequest, "key name is empty, too long or contains invalid characters"},
	{commands.ErrInvalidArgument, http.StatusBadRequest, "invalid request"},
}

// fail answers err as a KES error: status, Content-Type application/json
// and {"message":…}. Only 500s are logged, with their cause; request
// bodies are never logged.
func (k *kesAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := kesErrorOf(err)
	if status == http.StatusInternalServerError {
		k.metrics.errorEvents.Add(1)
		k.s.log.Error("KES request failed", "method", r.Method, "route", r.Pattern, "path", logPath(r), "remote", r.RemoteAddr, "err", err)
	}
	writeMessage(w, status, msg)
}

// kesErrorOf looks err up in kesErrorTable (where every "key already
// exists" error is KES's 400), then in the kms API's table, so that a
// domain error added there is not a KES 500.
func kesErrorOf(err error) (status int, msg string) {
	return resolveError(err, kesErrorTable, errorTable)
}

// done answers a request without payload: 200 and an empty body.
func (k *kesAPI) done(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeBody(w, "application/json", nil)
}

// reply answers v as JSON, or err.
func (k *kesAPI) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		k.fail(w, r, err)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeBody(w, "application/json", b)
	clear(b) // may hold plaintext
}

// ready answers 200 once the projection has caught up with the ledger
// (kmsledger's "key store"): 504 if that times out, 502 on other failures.
func (k *kesAPI) ready(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	ctx, cancel := context.WithTimeout(req.ctx, 5*time.Second)
	defer cancel()
	if err := k.s.proj.CatchUp(ctx); err != nil {
		k.s.log.Warn("KES readiness: ledger not reachable", "err", err)
		if errors.Is(err, context.DeadlineExceeded) {
			k.fail(w, r, &statusError{http.StatusGatewayTimeout, "key store is not reachable"})
			return
		}
		k.fail(w, r, &statusError{http.StatusBadGateway, "key store is unavailable"})
		return
	}
	writeBody(w, "text/plain", nil)
}

// status reports the server state; keystore_latency is the time (ms) the
// projection took to catch up with the ledger head.
func (k *kesAPI) status(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out := struct {
		Version     string `json:"version"`
		OS          string `json:"os"`
		Arch        string `json:"arch"`
		UpTime      int64  `json:"uptime"`
		CPUs        int    `json:"num_cpu"`
		UsableCPUs  int    `json:"num_cpu_used"`
		HeapAlloc   uint64 `json:"mem_heap_used"`
		StackAlloc  uint64 `json:"mem_stack_used"`
		Latency     int64  `json:"keystore_latency,omitempty"`
		Unreachable bool   `json:"keystore_unreachable,omitempty"`
		Unavailable bool   `json:"keystore_unavailable,omitempty"`
	}{
		Version: k.s.cfg.Version, OS: runtime.GOOS, Arch: runtime.GOARCH,
		UpTime: int64(time.Since(k.start).Seconds()), CPUs: runtime.NumCPU(), UsableCPUs: runtime.GOMAXPROCS(0),
		HeapAlloc: ms.HeapAlloc, StackAlloc: ms.StackInuse,
	}
	ctx, cancel := context.WithTimeout(req.ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := k.s.proj.CatchUp(ctx); err != nil {
		out.Unreachable, out.Unavailable = true, true
	} else {
		out.Latency = time.Since(start).Milliseconds()
	}
	k.reply(w, r, out, nil)
}

// apis lists the KES routes: method, path, max body, timeout (s).
func (k *kesAPI) apis(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	type api struct {
		Method  string `json:"method"`
		Path    string `json:"path"`
		MaxBody int64  `json:"max_body"`
		Timeout int64  `json:"timeout"`
	}
	var out []api
	for _, rt := range k.routes {
		out = append(out, api{rt.method, strings.TrimSuffix(rt.path, "/"), rt.maxBody, int64(rt.timeout / time.Second)})
	}
	k.reply(w, r, out, nil)
}

// kesBuckets are the upper bounds (seconds) of the response time histogram.
var kesBuckets = [...]float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 3, 5, 10}

// kesMetrics are the counters behind /v1/metrics.
type kesMetrics struct {
	success, clientErr, serverErr atomic.Uint64 // 2xx/3xx, 4xx, 5xx answers
	active                        atomic.Int64
	errorEvents                   atomic.Uint64 // logged failures
	buckets                       [len(kesBuckets)]atomic.Uint64
	count                         atomic.Uint64
	sumNanos                      atomic.Uint64
}

func (m *kesMetrics) observe(status int, d time.Duration) {
	switch {
	case status >= 500:
		m.serverErr.Add(1)
	case status >= 400:
		m.clientErr.Add(1)
	default:
		m.success.Add(1)
	}
	m.count.Add(1)
	m.sumNanos.Add(uint64(d))
	for i, le := range kesBuckets {
		if d.Seconds() <= le {
			m.buckets[i].Add(1)
		}
	}
}

// metricsText writes the Prometheus text exposition format (0.0.4).
func (k *kesAPI) metricsText(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := &k.metrics
	var b strings.Builder
	metric := func(name, typ, help string, v float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, typ, name, strconv.FormatFloat(v, 'g', -1, 64))
	}
	metric("kes_http_request_success", "counter", "Number of requests answered with 2xx.", float64(m.success.Load()))
	metric("kes_http_request_error", "counter", "Number of requests answered with 4xx.", float64(m.clientErr.Load()))
	metric("kes_http_request_failure", "counter", "Number of requests answered with 5xx.", float64(m.serverErr.Load()))
	metric("kes_http_request_active", "gauge", "Number of requests being served.", float64(m.active.Load()))
	b.WriteString("# HELP kes_http_response_time Response time of requests in seconds.\n# TYPE kes_http_response_time histogram\n")
	for i, le := range kesBuckets {
		fmt.Fprintf(&b, "kes_http_response_time_bucket{le=%q} %d\n", strconv.FormatFloat(le, 'g', -1, 64), m.buckets[i].Load())
	}
	count := m.count.Load()
	fmt.Fprintf(&b, "kes_http_response_time_bucket{le=\"+Inf\"} %d\n", count)
	fmt.Fprintf(&b, "kes_http_response_time_sum %s\nkes_http_response_time_count %d\n",
		strconv.FormatFloat(float64(m.sumNanos.Load())/1e9, 'g', -1, 64), count)
	var auditEvents uint64
	if a := k.s.cfg.Audit; a != nil {
		auditEvents = a.Stats().Stored // every request's record in the AUDIT stream
	}
	metric("kes_log_audit_events", "counter", "Number of audit log events.", float64(auditEvents))
	metric("kes_log_error_events", "counter", "Number of error log events.", float64(m.errorEvents.Load()))
	metric("kes_system_up_time", "gauge", "Time the server has been up, in seconds.", time.Since(k.start).Round(time.Second).Seconds())
	metric("kes_system_num_cpu", "gauge", "Number of logical CPUs.", float64(runtime.NumCPU()))
	metric("kes_system_num_cpu_used", "gauge", "Number of CPUs the server may use.", float64(runtime.GOMAXPROCS(0)))
	metric("kes_system_num_threads", "gauge", "Number of OS threads created.", float64(pprof.Lookup("threadcreate").Count()))
	metric("kes_system_mem_heap_used", "gauge", "Bytes of allocated heap objects.", float64(ms.HeapAlloc))
	metric("kes_system_mem_heap_objects", "gauge", "Number of allocated heap objects.", float64(ms.HeapObjects))
	metric("kes_system_mem_stack_used", "gauge", "Bytes in stack spans.", float64(ms.StackInuse))
	if k.s.mayReadMetrics(req.identity) {
		// Root and metrics readers get the server's own metrics too
		// (observe.go), in the same text format.
		k.s.appendMetricsText(&b)
	}
	writeBody(w, "text/plain; version=0.0.4; charset=utf-8", []byte(b.String()))
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
	start  time.Time
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush implements http.Flusher (the KES log streams flush).
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
