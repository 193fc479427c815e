package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric of the server.
const Namespace = "kmsledger"

// Metrics are the metrics of one server.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	reqSize  *prometheus.HistogramVec
	respSize *prometheus.HistogramVec
	inFlight prometheus.Gauge

	mu     sync.Mutex                            // serialises adding series
	series atomic.Pointer[map[seriesKey]*series] // copy on write
	sizes  atomic.Pointer[map[string]*sizes]     // by route
	http   http.Handler
}

// seriesKey names one request series.
type seriesKey struct {
	route   string
	command string
	status  int
}

// series are the resolved children of one seriesKey.
type series struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// sizes are the resolved body-size children of one route.
type sizes struct{ req, resp prometheus.Observer }

// Snapshot is the state a scrape reports, read when it is taken.
type Snapshot struct {
	Enclaves, Keys, KeyVersions, Identities, Policies int
	LedgerHead                                        uint64 // last LEDGER sequence
	ProjectionSeq                                     uint64 // last sequence the projection applied
	Audit                                             *Audit // nil when request audit is off
	HSMs                                              []HSM
	Replicas                                          []Replica // clustered only: every replica of every stream
	KeyCache                                          KeyCache
}

// KeyCache are the figures of the cache of unsealed key versions.
type KeyCache struct {
	Capacity, Size                  int
	Hits, Misses, Evictions, Primes uint64
}

// Replica is one replica of a stream in a cluster.
type Replica struct {
	Stream, Node    string
	Leader, Current bool
	Offline         bool
	Lag             uint64 // operations behind the stream's leader
}

// Audit are the figures of the request audit.
type Audit struct {
	Stored, Dropped, Lost, Busy uint64
	Backlog                     int // records accepted and not yet stored
}

// HSM is one configured HSM.
type HSM struct {
	Name, Kind string
	Up         bool // its last health check passed
	Calls      []HSMCalls
}

// HSMCalls counts one operation of an HSM.
type HSMCalls struct {
	Op     string // "wrap" or "unwrap"
	OK     uint64
	Failed uint64
}

// New returns the metrics of a server; snapshot is called on every
// scrape (with the scrape's context ending at its deadline) and must be
// safe for concurrent use.
func New(snapshot func() Snapshot) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	labels := []string{"api", "route", "command", "result"}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "http",
		Name: "requests_total", Help: "Requests answered, by API, route, command (kms API: the first frame's) and HTTP status."}, labels)
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "http",
		Name: "request_duration_seconds", Help: "Time from a request's arrival to its answer.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, labels)
	sizeBuckets := prometheus.ExponentialBuckets(64, 4, 9) // 64 B … 4 MiB
	m.reqSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "http",
		Name: "request_size_bytes", Help: "Request body sizes (Content-Length), by API and route.", Buckets: sizeBuckets}, []string{"api", "route"})
	m.respSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "http",
		Name: "response_size_bytes", Help: "Response body sizes, by API and route.", Buckets: sizeBuckets}, []string{"api", "route"})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "http",
		Name: "requests_in_flight", Help: "Requests being served."})
	m.reg.MustRegister(m.requests, m.latency, m.reqSize, m.respSize, m.inFlight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{snapshot: snapshot})
	empty := map[seriesKey]*series{}
	m.series.Store(&empty)
	noSizes := map[string]*sizes{}
	m.sizes.Store(&noSizes)
	m.http = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError})
	return m
}

// Begin counts a request in flight; End must follow.
func (m *Metrics) Begin() { m.inFlight.Inc() }

// End records a finished request: route is its route pattern ("" = none
// matched), command the kms command or "", status its HTTP status.
// reqBytes < 0 means unknown.
func (m *Metrics) End(route, command string, status int, d time.Duration, reqBytes, respBytes int64) {
	m.inFlight.Dec()
	s := (*m.series.Load())[seriesKey{route, command, status}]
	if s == nil {
		s = m.addSeries(seriesKey{route, command, status})
	}
	s.count.Inc()
	s.latency.Observe(d.Seconds())
	z := (*m.sizes.Load())[route]
	if z == nil {
		z = m.addSizes(route)
	}
	if reqBytes >= 0 {
		z.req.Observe(float64(reqBytes))
	}
	z.resp.Observe(float64(respBytes))
}

func (m *Metrics) addSeries(k seriesKey) *series {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.series.Load()
	if s := old[k]; s != nil {
		return s
	}
	route := routeLabel(k.route)
	vals := []string{API(k.route), route, k.command, strconv.Itoa(k.status)}
	s := &series{count: m.requests.WithLabelValues(vals...), latency: m.latency.WithLabelValues(vals...)}
	next := make(map[seriesKey]*series, len(old)+1)
	for kk, v := range old {
		next[kk] = v
	}
	next[k] = s
	m.series.Store(&next)
	return s
}

func (m *Metrics) addSizes(route string) *sizes {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.sizes.Load()
	if z := old[route]; z != nil {
		return z
	}
	api, label := API(route), routeLabel(route)
	z := &sizes{req: m.reqSize.WithLabelValues(api, label), resp: m.respSize.WithLabelValues(api, label)}
	next := make(map[string]*sizes, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[route] = z
	m.sizes.Store(&next)
	return z
}

// routeLabel is the route label of a route pattern ("" = "unmatched").
func routeLabel(route string) string {
	if route == "" {
		return "unmatched"
	}
	return route
}

// API names the API a route pattern belongs to: kms, kes, admin, hsm,
// ledger, health, debug, metrics, db, or "other" ("unmatched" for "").
func API(route string) string {
	path := route
	if i := indexByte(route, ' '); i >= 0 {
		path = route[i+1:]
	}
	switch {
	case route == "":
		return "unmatched"
	case hasPrefix(path, "/v1/kms"):
		return "kms"
	case hasPrefix(path, "/v1/admin/hsm"):
		return "hsm"
	case hasPrefix(path, "/v1/admin/"):
		return "admin"
	case hasPrefix(path, "/v1/ledger/"):
		return "ledger"
	case hasPrefix(path, "/v1/health/metrics"), path == "/v1/metrics":
		return "metrics"
	case hasPrefix(path, "/v1/health/"), path == "/version":
		return "health"
	case hasPrefix(path, "/v1/debug/"):
		return "debug"
	case hasPrefix(path, "/v1/db"):
		return "db"
	case hasPrefix(path, "/v1/key/"), hasPrefix(path, "/v1/policy/"), hasPrefix(path, "/v1/identity/"),
		hasPrefix(path, "/v1/log/"), path == "/v1/status", path == "/v1/api", path == "/v1/ready":
		return "kes"
	case hasPrefix(path, "/v1/transit"):
		return "transit"
	}
	return "other"
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// ServeHTTP writes the metrics in the format the scraper asks for
// (OpenMetrics when its Accept header names it, else Prometheus text).
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.http.ServeHTTP(w, r) }

// Gatherer returns the registry, for tests and for appending to another
// exposition.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }
