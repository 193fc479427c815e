package metrics_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/metrics"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func snapshot() metrics.Snapshot {
	return metrics.Snapshot{Enclaves: 2, Keys: 3, KeyVersions: 4, Identities: 5, Policies: 6, LedgerHead: 10, ProjectionSeq: 8,
		Audit: &metrics.Audit{Stored: 7, Backlog: 1},
		HSMs:  []metrics.HSM{{Name: "soft", Kind: "soft", Up: true, Calls: []metrics.HSMCalls{{Op: "unwrap", OK: 1}}}}}
}

// scrape returns the families of m's text exposition, parsed by
// Prometheus' own parser.
func scrape(t *testing.T, m *metrics.Metrics) map[string]bool {
	t.Helper()
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/health/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	out := map[string]bool{}
	for name := range mfs {
		out[name] = true
	}
	return out
}

// TestEndAllocatesNothing: once a series exists, counting a request
// allocates nothing (the request path's budget).
func TestEndAllocatesNothing(t *testing.T) {
	m := metrics.New(snapshot)
	m.Begin()
	m.End("POST /v1/kms/{enclave}", "KEY:GENERATE", 200, time.Millisecond, 20, 80)
	allocs := testing.AllocsPerRun(1000, func() {
		m.Begin()
		m.End("POST /v1/kms/{enclave}", "KEY:GENERATE", 200, time.Millisecond, 20, 80)
	})
	if allocs != 0 {
		t.Fatalf("Begin+End of an existing series: %v allocations, want 0", allocs)
	}
}

// TestProjectionLag: the lag is head minus applied, never negative.
func TestProjectionLag(t *testing.T) {
	for _, c := range []struct{ head, applied, want uint64 }{{10, 8, 2}, {8, 8, 0}, {5, 8, 0}} {
		m := metrics.New(func() metrics.Snapshot { return metrics.Snapshot{LedgerHead: c.head, ProjectionSeq: c.applied} })
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		want := "kmsledger_projection_lag_events " + strings.TrimSpace(jsonNumber(c.want))
		if !strings.Contains(rec.Body.String(), want+"\n") {
			t.Errorf("head %d applied %d: exposition lacks %q", c.head, c.applied, want)
		}
	}
}

func jsonNumber(v uint64) string { b, _ := json.Marshal(v); return string(b) }

// TestAPI names the API of each kind of route.
func TestAPI(t *testing.T) {
	for route, want := range map[string]string{
		"POST /v1/kms/{enclave}": "kms", "POST /v1/kms": "kms", "GET /v1/admin/hsm": "hsm",
		"GET /v1/admin/{enclave}/keys": "admin", "GET /v1/ledger/state": "ledger", "GET /v1/health/metrics": "metrics",
		"/v1/metrics": "metrics", "GET /v1/health/ready": "health", "GET /version": "health", "POST /v1/debug/pprof": "debug",
		"/v1/key/create/{arg...}": "kes", "/v1/log/audit": "kes", "": "unmatched", "GET /v1/db": "db",
	} {
		if got := metrics.API(route); got != want {
			t.Errorf("API(%q) = %q, want %q", route, got, want)
		}
	}
}

// TestDashboard: the Grafana dashboard is JSON, and every kmsledger_
// metric its queries use is one the server exports.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	m := metrics.New(snapshot)
	m.Begin()
	m.End("POST /v1/kms/{enclave}", "KEY:GENERATE", 200, time.Millisecond, 20, 80)
	have := scrape(t, m)
	name := regexp.MustCompile(`\b(kmsledger|go|process)_[a-z_]+`)
	used := 0
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			for _, n := range name.FindAllString(q.Expr, -1) {
				used++
				base := n
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(n, suffix); ok && have[b] {
						base = b
					}
				}
				if !have[base] {
					t.Errorf("panel %q uses %s, which the server does not export", p.Title, n)
				}
			}
		}
	}
	if d.Title == "" || used < 10 {
		t.Fatalf("dashboard %q uses %d metrics, want a titled dashboard over the server's metrics", d.Title, used)
	}
}
