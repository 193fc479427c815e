package api_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/api/wire"
)

// transitStack is a node serving the Transit API at mount "transit" for
// enclave "minio" and at "sops/team" for enclave "team", with both
// enclaves made.
type transitStack struct {
	*stack
	root *client.Client // kms API client of root
	http *http.Client   // TLS, no client certificate
}

func newTransitStack(t *testing.T, configure ...func(*api.Config)) *transitStack {
	t.Helper()
	s := startTransit(t, nodetest.Options{}, configure...)
	mustOK(t, s.root.CreateEnclave(ctx, "minio"))
	mustOK(t, s.root.CreateEnclave(ctx, "team"))
	return s
}

func startTransit(t *testing.T, o nodetest.Options, configure ...func(*api.Config)) *transitStack {
	t.Helper()
	o.Configure = func(c *api.Config) {
		c.TransitMounts = map[string]string{"transit": "minio", "sops/team": "team"}
		for _, f := range configure {
			f(c)
		}
	}
	n := nodetest.Start(t, o)
	s := fromNode(t, n)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: n.Roots}}}
	t.Cleanup(hc.CloseIdleConnections)
	return &transitStack{stack: s, root: s.client(""), http: hc}
}

// restart stops the node and starts it again on the same data dir with
// the same Transit mounts.
func (s *transitStack) restart(t *testing.T) *transitStack {
	s.Stop()
	return startTransit(t, nodetest.Options{Dir: s.dir, HSMKey: s.hsmKey})
}

// vaultResp is a decoded Transit answer.
type vaultResp struct {
	Status   int
	Data     map[string]any
	Errors   []string
	Warnings []string
	Auth     map[string]any
	Raw      []byte
}

// call sends a Transit request the way the Vault Go client does: JSON
// body, no Content-Type, X-Vault-Request and X-Vault-Token.
func (s *transitStack) call(t testing.TB, method, path, token string, body any) vaultResp {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		mustOK(t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+s.addr+path, rd)
	mustOK(t, err)
	req.Header.Set("X-Vault-Request", "true")
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := s.http.Do(req)
	mustOK(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	mustOK(t, err)
	out := vaultResp{Status: resp.StatusCode, Raw: raw}
	if len(raw) > 0 {
		var env struct {
			Data     map[string]any `json:"data"`
			Errors   []string       `json:"errors"`
			Warnings []string       `json:"warnings"`
			Auth     map[string]any `json:"auth"`
		}
		if raw[0] != '{' {
			return out // net/http's own text answers
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, path, raw, err)
		}
		out.Data, out.Errors, out.Warnings, out.Auth = env.Data, env.Errors, env.Warnings, env.Auth
	}
	return out
}

// want checks the status of r, and for an error answer that its single
// message contains msg.
func (r vaultResp) want(t testing.TB, status int, msg string) vaultResp {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d (body %s), want %d", r.Status, r.Raw, status)
	}
	if msg != "" && (len(r.Errors) != 1 || !strings.Contains(r.Errors[0], msg)) {
		t.Fatalf("errors %q, want one containing %q", r.Errors, msg)
	}
	return r
}

func (r vaultResp) str(t testing.TB, field string) string {
	t.Helper()
	s, ok := r.Data[field].(string)
	if !ok {
		t.Fatalf("data.%s = %v, want a string (body %s)", field, r.Data[field], r.Raw)
	}
	return s
}

func b64s(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// userWith makes an identity of enclave with a policy allowing cmds on
// every key, and returns its API key (a Transit token).
func (s *transitStack) userWith(t testing.TB, enclave string, cmds ...string) string {
	t.Helper()
	key, id := newIdentity(t)
	allow := map[string][]string{}
	for _, c := range cmds {
		allow[c] = []string{"*"}
	}
	policy := "p-" + id[3:12]
	mustOK(t, s.root.CreatePolicy(ctx, enclave, &wire.CreatePolicyRequest{Name: policy, Allow: allow}))
	mustOK(t, s.root.CreateIdentity(ctx, enclave, &wire.CreateIdentityRequest{Identity: id, Privilege: "User"}))
	mustOK(t, s.root.AssignPolicy(ctx, enclave, id, policy))
	return key
}
