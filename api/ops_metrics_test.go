package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parseMetrics parses an exposition with Prometheus' own text parser.
func parseMetrics(t testing.TB, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Prometheus' parser refuses the metrics: %v\n%s", err, b)
	}
	return mfs
}

// metricValue returns the value of the series of family name whose
// labels include want (-1 if there is none).
func metricValue(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
next:
	for _, m := range mf.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	return -1
}

// TestMetrics: root scrapes /v1/health/metrics; Prometheus' parser
// reads it; the request counters and latency histograms move per API,
// command and result, and the state figures are the state's. Nobody but
// root and a metrics reader (a root-made identity with a root-made
// policy allowing CLUSTER:STATUS on "metrics") may scrape.
func TestMetrics(t *testing.T) {
	s := newStack(t)
	admin, user := opsUsers(t, s, "e1") // user: root-made, policy allows CLUSTER:STATUS on "*"
	root := s.client("")
	mustOK(t, root.CreateKey(ctx, "e1", "k", "", false))
	scrape := func() map[string]*dto.MetricFamily {
		b, err := root.Metrics(ctx)
		mustOK(t, err)
		return parseMetrics(t, b)
	}
	gen := map[string]string{"api": "kms", "route": "POST /v1/kms/{enclave}", "command": "KEY:GENERATE", "result": "200"}
	denied := map[string]string{"api": "kms", "command": "KEY:GENERATE", "result": "403"}
	before := scrape()
	g0, d0 := max(0, metricValue(before, "kmsledger_http_requests_total", gen)), max(0, metricValue(before, "kmsledger_http_requests_total", denied))
	for range 3 {
		_, err := admin.GenerateKey(ctx, "e1", "k", 0, nil, 32)
		mustOK(t, err)
	}
	_, err := user.GenerateKey(ctx, "e1", "k", 0, nil, 32)
	wantStatus(t, "GenerateKey as User without KEY:GENERATE", err, http.StatusForbidden, "")
	after := scrape()
	if g := metricValue(after, "kmsledger_http_requests_total", gen); g != g0+3 {
		t.Fatalf("KEY:GENERATE 200 counter %v -> %v, want +3", g0, g)
	}
	if d := metricValue(after, "kmsledger_http_requests_total", denied); d != d0+1 {
		t.Fatalf("KEY:GENERATE 403 counter %v -> %v, want +1", d0, d)
	}
	if h := metricValue(after, "kmsledger_http_request_duration_seconds", gen); h != g0+3 {
		t.Fatalf("KEY:GENERATE latency observations = %v, want %v", h, g0+3)
	}
	for name, want := range map[string]float64{
		"kmsledger_objects\x00keys": 1, "kmsledger_objects\x00enclaves": 1, "kmsledger_objects\x00policies": 1,
		"kmsledger_objects\x00identities": 2, "kmsledger_projection_sequence": float64(s.Proj.Seq()),
		"kmsledger_projection_lag_events": 0,
	} {
		family, kind, _ := strings.Cut(name, "\x00")
		labels := map[string]string{}
		if kind != "" {
			labels["kind"] = kind
		}
		if got := metricValue(after, family, labels); got != want {
			t.Errorf("%s%v = %v, want %v", family, labels, got, want)
		}
	}
	for _, family := range []string{"kmsledger_http_requests_in_flight", "kmsledger_http_request_size_bytes",
		"kmsledger_http_response_size_bytes", "kmsledger_ledger_head_sequence", "go_goroutines", "go_memstats_heap_alloc_bytes"} {
		if after[family] == nil {
			t.Errorf("no %s in the metrics", family)
		}
	}
	if v := metricValue(after, "kmsledger_hsm_up", map[string]string{"hsm": "soft", "kind": "soft"}); v != 0 && v != 1 {
		t.Errorf("kmsledger_hsm_up of soft = %v, want 0 or 1", v)
	}
	if v := metricValue(after, "kmsledger_hsm_calls_total", map[string]string{"hsm": "soft", "op": "unwrap", "result": "ok"}); v < 1 {
		t.Errorf("HSM unwrap calls of soft = %v, want at least the REK's", v)
	}

	// OpenMetrics when asked for.
	code, h, b := s.rawAs(t, "").do(http.MethodGet, "/v1/health/metrics", nil, "Accept", "application/openmetrics-text;version=1.0.0")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "application/openmetrics-text") || !bytes.HasSuffix(b, []byte("# EOF\n")) {
		t.Fatalf("OpenMetrics scrape: %d %s, want 200 application/openmetrics-text ending in # EOF", code, h.Get("Content-Type"))
	}

	testScrapeAccess(t, s, user)
}

// testScrapeAccess: root-made reader may scrape, nobody else.
func testScrapeAccess(t *testing.T, s *stack, user *client.Client) {
	if b, err := user.Metrics(ctx); err != nil || parseMetrics(t, b)["kmsledger_objects"] == nil {
		t.Fatalf("scrape as root-made reader: %v", err)
	}
	adminKey := newAdmin(t, s, "e1")
	for _, c := range []struct {
		name string
		c    *rawClient
	}{
		{"no certificate", s.raw(t)},
		{"random certificate", s.raw(t, randomCert(t))},
		{"enclave Admin", s.rawAs(t, adminKey)},
		{"reader made by an enclave Admin", s.rawAs(t, s.adminMadeReader(t, "e1", s.client(adminKey)))},
		{"User whose policy allows CLUSTER:STATUS on another resource", s.rawAs(t, s.rootMadeUser(t, "e1", map[string][]string{"CLUSTER:STATUS": {"other"}}, nil))},
		{"User whose policy denies metrics", s.rawAs(t, s.rootMadeUser(t, "e1", map[string][]string{"CLUSTER:STATUS": {"*"}}, map[string][]string{"CLUSTER:STATUS": {"metrics"}}))},
	} {
		if code, _, b := c.c.do(http.MethodGet, "/v1/health/metrics", nil); code != http.StatusForbidden {
			t.Errorf("scrape as %s: %d %.80s, want 403", c.name, code, b)
		}
	}
}

// newAdmin makes a new Admin of enclave e and returns its API key.
func newAdmin(t *testing.T, s *stack, e string) string {
	t.Helper()
	key, id := newIdentity(t)
	mustOK(t, s.client("").CreateIdentity(ctx, e, &wire.CreateIdentityRequest{Identity: id, Privilege: "Admin"}))
	return key
}

// serveOn serves srv on a new loopback listener until the test ends and
// returns its address.
func serveOn(t *testing.T, srv *api.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	mustOK(t, err)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// adminMadeReader has an enclave Admin make a policy allowing
// CLUSTER:STATUS on "metrics" and a User with it; it returns the User's
// API key.
func (s *stack) adminMadeReader(t *testing.T, e string, admin interface {
	CreatePolicy(context.Context, string, *wire.CreatePolicyRequest) error
	CreateIdentity(context.Context, string, *wire.CreateIdentityRequest) error
	AssignPolicy(context.Context, string, string, string) error
}) string {
	t.Helper()
	mustOK(t, admin.CreatePolicy(ctx, e, &wire.CreatePolicyRequest{Name: "scrape", Allow: map[string][]string{"CLUSTER:STATUS": {"metrics"}}}))
	key, id := newIdentity(t)
	mustOK(t, admin.CreateIdentity(ctx, e, &wire.CreateIdentityRequest{Identity: id}))
	mustOK(t, admin.AssignPolicy(ctx, e, id, "scrape"))
	return key
}

// rootMadeUser has root make a policy and a User with it; it returns the
// User's API key.
func (s *stack) rootMadeUser(t *testing.T, e string, allow, deny map[string][]string) string {
	t.Helper()
	root := s.client("")
	key, id := newIdentity(t)
	name := "p" + strings.ToLower(id[3:11])
	name = strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			return r
		}
		return 'x'
	}, name)
	mustOK(t, root.CreatePolicy(ctx, e, &wire.CreatePolicyRequest{Name: name, Allow: allow, Deny: deny}))
	mustOK(t, root.CreateIdentity(ctx, e, &wire.CreateIdentityRequest{Identity: id}))
	mustOK(t, root.AssignPolicy(ctx, e, id, name))
	return key
}

// ndjsonLines opens an ndjson stream of the KES API and returns its lines.
func ndjsonLines(t *testing.T, ctx context.Context, c *kesClient, path string) <-chan map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	mustOK(t, err)
	resp, err := c.http.Do(req)
	mustOK(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%s: %d %s, want a 200 ndjson stream", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan map[string]any, 16)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("%s: line %q is not JSON: %v", path, sc.Text(), err)
				return
			}
			out <- m
		}
	}()
	return out
}

// TestKESMetricsAndLogs: KES's /v1/metrics carries the server's metrics
// for root only; /v1/log/error and /v1/log/audit stream ndjson to root
// (the audit one from the AUDIT stream) and to nobody else.
func TestKESMetricsAndLogs(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{Audit: &ledger.AuditConfig{Sync: true}})
	s := &kesStack{stack: fromNode(t, n), root: fromNode(t, n).client("")}
	mustOK(t, s.root.CreateEnclave(ctx, kesEnclave))
	srv := api.New(api.Config{Handler: n.Handler, Projection: n.Proj, Certificate: nodetest.Certificate(t), Version: "test",
		KESEnclave: kesEnclave, Audit: n.Auditor})
	s.kesAddr = serveOn(t, srv)
	root := s.kesRoot()
	admin, _ := s.addIdentity("Admin", "")

	r := root.on(t).do(http.MethodGet, "/v1/metrics", "")
	mfs := parseMetrics(t, r.body)
	if r.status != http.StatusOK || mfs["kes_http_request_success"] == nil || mfs["kmsledger_objects"] == nil {
		t.Fatalf("KES metrics as root: %d, want kes_ and kmsledger_ families", r.status)
	}
	if v := metricValue(mfs, "kes_log_audit_events", nil); v < 1 { // sync audit: the enclave creation's record at least
		t.Fatalf("kes_log_audit_events = %v, want the stored audit records", v)
	}
	r = admin.on(t).do(http.MethodGet, "/v1/metrics", "")
	mfs = parseMetrics(t, r.body)
	if r.status != http.StatusOK || mfs["kes_http_request_success"] == nil || mfs["kmsledger_objects"] != nil {
		t.Fatalf("KES metrics as enclave Admin: %d, want kes_ families only", r.status)
	}

	for _, path := range []string{"/v1/log/error", "/v1/log/audit"} {
		if r := admin.on(t).do(http.MethodGet, path, ""); r.status != http.StatusForbidden {
			t.Errorf("%s as enclave Admin: %d %s, want 403", path, r.status, r.body)
		}
		if r := s.kesClient("").on(t).do(http.MethodGet, path, ""); r.status != http.StatusBadRequest {
			t.Errorf("%s without a certificate: %d %s, want KES's 400", path, r.status, r.body)
		}
	}

	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	lines := func(path string) <-chan map[string]any { return ndjsonLines(t, sctx, root, path) }
	audit := lines("/v1/log/audit")
	errs := lines("/v1/log/error")
	admin.on(t).do(http.MethodGet, "/v1/key/describe/no-such-key", "")
	for m := range audit {
		req, _ := m["request"].(map[string]any)
		resp, _ := m["response"].(map[string]any)
		if req["path"] != "/v1/key/describe/no-such-key" {
			continue
		}
		if req["ip"] != "127.0.0.1" || len(req["identity"].(string)) != 64 || resp["code"] != float64(404) || m["time"] == nil {
			t.Fatalf("audit line = %v, want ip, KES identity, code 404 and time", m)
		}
		break
	}
	// A profiling start is logged at INFO, which the error stream carries.
	if r := root.on(t).do(http.MethodPost, "/v1/debug/pprof?heap=true", ""); r.status != http.StatusOK {
		t.Fatalf("start profiling: %d %s", r.status, r.body)
	}
	root.on(t).do(http.MethodDelete, "/v1/debug/pprof", "")
	for m := range errs {
		if msg, _ := m["message"].(string); strings.Contains(msg, "profiling started") {
			return
		}
	}
	t.Fatal("error log stream ended without the profiling record")
}

// TestKeyCacheMetrics: the key cache's capacity, size, hits, misses and
// evictions are in the metrics: a new key is in the cache, so its uses
// are hits (it was primed once); once disabled (it leaves the cache) and
// enabled again, its next use is a miss, and the ones after it hits.
func TestKeyCacheMetrics(t *testing.T) {
	s := newStack(t)
	root := s.client("")
	mustOK(t, root.CreateEnclave(ctx, "e1"))
	mustOK(t, root.CreateKey(ctx, "e1", "k", "", false))
	scrape := func() map[string]*dto.MetricFamily {
		b, err := root.Metrics(ctx)
		mustOK(t, err)
		return parseMetrics(t, b)
	}
	hit, miss := map[string]string{"result": "hit"}, map[string]string{"result": "miss"}
	before := scrape()
	h0, m0 := metricValue(before, "kmsledger_key_cache_lookups_total", hit), metricValue(before, "kmsledger_key_cache_lookups_total", miss)
	use := func() {
		for range 3 {
			_, err := root.GenerateKey(ctx, "e1", "k", 0, nil, 32)
			mustOK(t, err)
		}
	}
	use()
	primed := scrape()
	if h, m := metricValue(primed, "kmsledger_key_cache_lookups_total", hit), metricValue(primed, "kmsledger_key_cache_lookups_total", miss); h != h0+3 || m != m0 {
		t.Errorf("a new key used 3 times: %v hits, %v misses; want %v, %v", h, m, h0+3, m0)
	}
	mustOK(t, root.DisableKey(ctx, "e1", "k", 0))
	mustOK(t, root.EnableKey(ctx, "e1", "k", 0))
	use()
	after := scrape()
	for name, want := range map[string]float64{
		"kmsledger_key_cache_lookups_total\x00hit":  h0 + 5,
		"kmsledger_key_cache_lookups_total\x00miss": m0 + 1,
		"kmsledger_key_cache_versions":              1,
		"kmsledger_key_cache_capacity_versions":     projections.DefaultKeyCache,
		"kmsledger_key_cache_evictions_total":       0,
		"kmsledger_key_cache_primes_total":          1, // the creation, not the use after enabling
	} {
		family, result, _ := strings.Cut(name, "\x00")
		labels := map[string]string{}
		if result != "" {
			labels["result"] = result
		}
		if got := metricValue(after, family, labels); got != want {
			t.Errorf("%s%v = %v, want %v", family, labels, got, want)
		}
	}
}
