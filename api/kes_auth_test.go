package api_test

import (
	"bufio"
	"bytes"
	"errors"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/migrate/kescompat"
)

// kesMinIOPolicy is a typical KES policy for MinIO: create, generate and
// decrypt minio-* keys, describe and list any, status and metrics.
var (
	kesMinIOAllow = []string{"/v1/key/create/minio-*", "/v1/key/generate/minio-*", "/v1/key/decrypt/minio-*",
		"/v1/key/describe/*", "/v1/key/list/*", "/v1/status", "/v1/metrics"}
	kesMinIODeny = []string{"/v1/key/decrypt/minio-secret"}
)

func TestKESPolicyEnforcement(t *testing.T) {
	s := startStackKES(t)
	allow, deny, err := kescompat.PolicyRules(kesMinIOAllow, kesMinIODeny)
	mustOK(t, err)
	mustOK(t, s.root.CreatePolicy(ctx, kesEnclave, &wire.CreatePolicyRequest{Name: "minio", Allow: allow, Deny: deny}))
	root := s.kesRoot()
	root.ok("POST", "/v1/key/create/minio-a", "", nil)
	root.ok("POST", "/v1/key/create/minio-secret", "", nil)
	root.ok("POST", "/v1/key/create/other", "", nil)
	var g struct{ Ciphertext []byte }
	root.ok("POST", "/v1/key/generate/minio-secret", "", &g)
	decryptSecret := `{"ciphertext":"` + b64(g.Ciphertext) + `"}`

	user, _ := s.addIdentity("User", "minio")
	nopolicy, _ := s.addIdentity("User", "")
	admin, _ := s.addIdentity("Admin", "")
	stranger, _ := s.kesAs(newKESAPIKey(t))
	noCert := s.kesClient("")

	const denied = "not authorized: insufficient permissions"
	tests := []struct {
		name         string
		c            *kesClient
		method, path string
		body         string
		status       int // 200, or the error status with message denied
	}{
		{"UserGenerate", user, "POST", "/v1/key/generate/minio-a", "", 200},
		{"UserCreate", user, "POST", "/v1/key/create/minio-b", "", 200},
		{"UserGenerateOther", user, "POST", "/v1/key/generate/other", "", 403},
		{"UserCreateOther", user, "POST", "/v1/key/create/other-b", "", 403},
		{"UserDecryptDenyWins", user, "POST", "/v1/key/decrypt/minio-secret", decryptSecret, 403},
		{"UserDescribe", user, "GET", "/v1/key/describe/other", "", 200},
		{"UserList", user, "GET", "/v1/key/list/*", "", 200},
		{"UserDelete", user, "DELETE", "/v1/key/delete/minio-a", "", 403},
		{"UserPolicyRead", user, "GET", "/v1/policy/read/minio", "", 403},
		{"UserStatus", user, "GET", "/v1/status", "", 200},
		{"UserSelf", user, "GET", "/v1/identity/self/describe", "", 200},
		{"NoPolicyGenerate", nopolicy, "POST", "/v1/key/generate/minio-a", "", 403},
		{"NoPolicyStatus", nopolicy, "GET", "/v1/status", "", 200},
		{"AdminDelete", admin, "DELETE", "/v1/key/delete/other", "", 200},
		{"AdminPolicyRead", admin, "GET", "/v1/policy/read/minio", "", 200},
		{"AdminDecrypt", admin, "POST", "/v1/key/decrypt/minio-secret", decryptSecret, 200},
		{"RootDecrypt", root, "POST", "/v1/key/decrypt/minio-secret", decryptSecret, 200},
		{"RootAPI", root, "GET", "/v1/api", "", 200},
		{"StrangerGenerate", stranger, "POST", "/v1/key/generate/minio-a", "", 403},
		{"StrangerStatus", stranger, "GET", "/v1/status", "", 403},
		{"StrangerSelf", stranger, "GET", "/v1/identity/self/describe", "", 403},
		{"StrangerListIdentities", stranger, "GET", "/v1/identity/list/*", "", 403},
		{"NoCertVersion", noCert, "GET", "/version", "", 200},
		{"NoCertReady", noCert, "GET", "/v1/ready", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.status == 200 {
				tt.c.on(t).ok(tt.method, tt.path, tt.body, nil)
				return
			}
			tt.c.on(t).fails(tt.method, tt.path, tt.body, tt.status, denied)
		})
	}
	t.Run("NoCertificate", func(t *testing.T) {
		noCert.on(t).fails("POST", "/v1/key/generate/minio-a", "", 400, "tls: client certificate is required")
	})
	t.Run("OtherEnclaveAdmin", func(t *testing.T) {
		mustOK(t, s.root.CreateEnclave(ctx, "elsewhere"))
		c, id := s.kesAs(newKESAPIKey(t))
		mustOK(t, s.root.CreateIdentity(ctx, "elsewhere", &wire.CreateIdentityRequest{Identity: h1Of(t, id), Privilege: "Admin"}))
		c.on(t).fails("POST", "/v1/key/generate/minio-a", "", 403, denied)
	})
}

func TestKESPoliciesAndIdentities(t *testing.T) {
	s := startStackKES(t)
	allow, deny, err := kescompat.PolicyRules(kesMinIOAllow, kesMinIODeny)
	mustOK(t, err)
	mustOK(t, s.root.CreatePolicy(ctx, kesEnclave, &wire.CreatePolicyRequest{Name: "minio", Allow: allow, Deny: deny}))
	mustOK(t, s.root.CreatePolicy(ctx, kesEnclave, &wire.CreatePolicyRequest{Name: "monitor", Allow: map[string][]string{"KEY:LIST": {"*"}}}))
	admin, adminID := s.addIdentity("Admin", "")
	user, userID := s.addIdentity("User", "minio")
	root := s.kesRoot()
	checkKESPolicies(t, admin, root)
	checkKESIdentities(t, admin, user, root, adminID, userID)
}

// kesMinIOWantAllow are the KES allow rules of policy minio as read
// back: open APIs (/v1/status, /v1/metrics) are not policy rules, so
// they drop out.
var kesMinIOWantAllow = []string{"/v1/key/create/minio-*", "/v1/key/decrypt/minio-*", "/v1/key/describe/*", "/v1/key/generate/minio-*", "/v1/key/list/*"}

// checkKESPolicies reads, describes and lists the policies minio and
// monitor as an Admin.
func checkKESPolicies(t *testing.T, admin, root *kesClient) {
	t.Helper()
	wantAllow := kesMinIOWantAllow
	var pol struct {
		Name        string
		Allow, Deny map[string]struct{}
		CreatedAt   time.Time `json:"created_at"`
		CreatedBy   string    `json:"created_by"`
	}
	admin.ok("GET", "/v1/policy/read/minio", "", &pol)
	if got := slices.Sorted(maps.Keys(pol.Allow)); pol.Name != "minio" || !slices.Equal(got, wantAllow) ||
		!reflect.DeepEqual(pol.Deny, map[string]struct{}{"/v1/key/decrypt/minio-secret": {}}) || pol.CreatedBy != root.id {
		t.Fatalf("policy read = %+v, want allow %v, deny the secret, created by root %s", pol, wantAllow, root.id)
	}
	var desc map[string]any
	admin.ok("GET", "/v1/policy/describe/minio", "", &desc)
	if _, ok := desc["allow"]; desc["name"] != "minio" || ok || desc["created_at"] == nil || desc["created_by"] != root.id {
		t.Fatalf("policy describe = %v, want name and creation only", desc)
	}
	admin.fails("GET", "/v1/policy/describe/nope", "", 404, "policy does not exist")
	var names struct{ Names []string }
	admin.ok("GET", "/v1/policy/list", "", &names)
	if !slices.Equal(names.Names, []string{"minio", "monitor"}) {
		t.Fatalf("policy list = %v", names.Names)
	}

}

// checkKESIdentities describes and lists the identities as an Admin, and
// the caller itself as a User and as root.
func checkKESIdentities(t *testing.T, admin, user, root *kesClient, adminID, userID string) {
	t.Helper()
	var id struct {
		Admin     bool
		Policy    string
		CreatedAt time.Time `json:"created_at"`
		CreatedBy string    `json:"created_by"`
	}
	admin.ok("GET", "/v1/identity/describe/"+userID, "", &id)
	if id.Admin || id.Policy != "minio" || id.CreatedBy != root.id {
		t.Fatalf("describe user = %+v, want policy minio, created by root", id)
	}
	admin.ok("GET", "/v1/identity/describe/"+adminID, "", &id)
	if !id.Admin {
		t.Fatalf("describe admin = %+v, want admin", id)
	}
	admin.ok("GET", "/v1/identity/describe/"+root.id, "", &id)
	if !id.Admin {
		t.Fatalf("describe root = %+v, want admin", id)
	}
	admin.fails("GET", "/v1/identity/describe/"+strings.Repeat("ab", 32), "", 404, "identity does not exist")

	var ids struct {
		Identities []string
		ContinueAt string `json:"continue_at"`
	}
	admin.ok("GET", "/v1/identity/list/*", "", &ids)
	want := []string{adminID, userID, root.id}
	slices.Sort(want)
	if !slices.Equal(ids.Identities, want) {
		t.Fatalf("identity list = %v, want %v (admin included)", ids.Identities, want)
	}
	admin.ok("GET", "/v1/identity/list/"+userID[:6], "", &ids)
	if !slices.Contains(ids.Identities, userID) || slices.Contains(ids.Identities, adminID) && adminID[:6] != userID[:6] {
		t.Fatalf("identity list with prefix %s = %v", userID[:6], ids.Identities)
	}

	var self struct {
		Identity    string
		Admin       bool
		Policy      string
		Allow, Deny map[string]struct{}
	}
	user.ok("GET", "/v1/identity/self/describe", "", &self)
	if self.Identity != userID || self.Admin || self.Policy != "minio" || len(self.Allow) != len(kesMinIOWantAllow) || len(self.Deny) != 1 {
		t.Fatalf("self describe (user) = %+v", self)
	}
	self.Policy, self.Allow, self.Deny = "", nil, nil
	root.ok("GET", "/v1/identity/self/describe", "", &self)
	if self.Identity != root.id || !self.Admin || self.Policy != "" {
		t.Fatalf("self describe (root) = %+v", self)
	}
}

func TestKESServerEndpoints(t *testing.T) {
	s := startStackKES(t)
	admin, _ := s.addIdentity("Admin", "")
	noCert := s.kesClient("")

	var v struct{ Version string }
	noCert.ok("GET", "/version", "", &v)
	if v.Version != "test" {
		t.Fatalf("/version = %+v", v)
	}
	if b := noCert.ok("GET", "/v1/ready", "", nil); len(b) != 0 {
		t.Fatalf("/v1/ready body = %q", b)
	}

	var st struct {
		Version    string
		OS, Arch   string
		UpTime     *float64 `json:"uptime"`
		CPUs       int      `json:"num_cpu"`
		UsableCPUs int      `json:"num_cpu_used"`
		Heap       uint64   `json:"mem_heap_used"`
		Stack      uint64   `json:"mem_stack_used"`
		Unreach    bool     `json:"keystore_unreachable"`
	}
	admin.ok("GET", "/v1/status", "", &st)
	if st.Version != "test" || st.OS == "" || st.Arch == "" || st.UpTime == nil || st.CPUs < 1 || st.UsableCPUs < 1 || st.Heap == 0 || st.Stack == 0 || st.Unreach {
		t.Fatalf("/v1/status = %+v", st)
	}

	var apis []struct {
		Method  string
		Path    string
		MaxBody int64 `json:"max_body"`
		Timeout int64
	}
	admin.ok("GET", "/v1/api", "", &apis)
	byPath := map[string]string{}
	for _, a := range apis {
		byPath[a.Path] = a.Method + " " + strconv.FormatInt(a.MaxBody, 10) + " " + strconv.FormatInt(a.Timeout, 10)
	}
	for path, want := range map[string]string{
		"/version": "GET 0 10", "/v1/api": "GET 0 10", "/v1/status": "GET 0 15",
		"/v1/key/create": "PUT 0 15", "/v1/key/generate": "PUT 1000000 15", "/v1/key/delete": "DELETE 0 15",
		"/v1/key/hmac": "PUT 1000000 15", "/v1/identity/self/describe": "GET 0 15",
	} {
		if byPath[path] != want {
			t.Errorf("/v1/api %s = %q, want %q", path, byPath[path], want)
		}
	}

	// Counters move by exactly what happened between two scrapes; the first
	// scrape counts itself once it is answered.
	m1 := kesMetrics(t, admin)
	admin.ok("POST", "/v1/key/create/k", "", nil)
	admin.ok("POST", "/v1/key/generate/k", "", nil)
	admin.fails("POST", "/v1/key/create/k", "", 400, "key already exists")
	admin.fails("GET", "/v1/key/describe/nope", "", 404, "key does not exist")
	admin.fails("POST", "/v1/key/describe/k", "", 405, "method not allowed")
	m2 := kesMetrics(t, admin)
	for name, want := range map[string]float64{
		"kes_http_request_success": 3, "kes_http_request_error": 3, "kes_http_request_failure": 0,
		"kes_http_response_time_count": 6, `kes_http_response_time_bucket{le="+Inf"}`: 6,
	} {
		if got := m2[name] - m1[name]; got != want {
			t.Errorf("%s grew by %v, want %v", name, got, want)
		}
	}
	if m2["kes_http_request_active"] != 1 || m2["kes_system_num_cpu"] < 1 || m2["kes_system_mem_heap_used"] <= 0 {
		t.Errorf("gauges: active %v (want 1: the scrape), cpus %v, heap %v", m2["kes_http_request_active"], m2["kes_system_num_cpu"], m2["kes_system_mem_heap_used"])
	}
}

// kesMetrics scrapes /v1/metrics and checks the text format: every sample
// has a # TYPE line for its family.
func kesMetrics(t *testing.T, c *kesClient) map[string]float64 {
	t.Helper()
	r := c.do("GET", "/v1/metrics", "")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("/v1/metrics = %d %q", r.status, r.header.Get("Content-Type"))
	}
	out := map[string]float64{}
	types := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			types[name] = typ
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		f, err := strconv.ParseFloat(value, 64)
		if !ok || err != nil {
			t.Fatalf("metrics line %q: %v", line, errors.Join(err))
		}
		family, _, _ := strings.Cut(name, "{")
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(family, suffix); ok && types[base] == "histogram" {
				family = base
			}
		}
		if types[family] == "" {
			t.Fatalf("metrics sample %q has no # TYPE line", line)
		}
		out[name] = f
	}
	for name, typ := range map[string]string{
		"kes_http_request_success": "counter", "kes_http_request_error": "counter", "kes_http_request_failure": "counter",
		"kes_http_request_active": "gauge", "kes_http_response_time": "histogram", "kes_log_audit_events": "counter",
		"kes_log_error_events": "counter", "kes_system_up_time": "gauge", "kes_system_num_threads": "gauge",
		"kes_system_mem_heap_objects": "gauge", "kes_system_mem_stack_used": "gauge", "kes_system_num_cpu_used": "gauge",
	} {
		if types[name] != typ {
			t.Errorf("metric %s has type %q, want %s", name, types[name], typ)
		}
	}
	return out
}
