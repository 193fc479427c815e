package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
)

func TestParseEndpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
		want []string
		err  bool
	}{
		{"Default", nil, []string{"127.0.0.1:7373"}, false},
		{"Bare", []string{"kms:7373"}, []string{"kms:7373"}, false},
		{"Schemes", []string{"https://a:1", "http://b", "c:3/"}, []string{"a:1", "b", "c:3"}, false},
		{"IPv6", []string{"[::1]:7373"}, []string{"[::1]:7373"}, false},
		{"Path", []string{"https://a:1/v1"}, nil, true},
		{"Empty", []string{""}, nil, true},
		{"UserInfo", []string{"u@a:1"}, nil, true},
		{"Query", []string{"a:1?x=1"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseEndpoints(tt.in)
			if tt.err {
				if !errors.Is(err, ErrInvalidEndpoint) {
					t.Fatalf("parseEndpoints(%q) err = %v, want ErrInvalidEndpoint", tt.in, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parseEndpoints(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNewRejectsBadAPIKey(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{APIKey: "k1:short"}); !errors.Is(err, wire.ErrInvalidAPIKey) {
		t.Fatalf("New(bad key) err = %v, want ErrInvalidAPIKey", err)
	}
}

func TestClientIdentity(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(f wire.Frame) ([]byte, *Error) {
		return (&wire.EnclaveStatusResponse{Name: "e"}).MarshalProto(), nil
	})
	c := newClient(t, testAPIKey, ts.Server)
	if c.Identity() != testIdentity {
		t.Fatalf("Identity() = %q, want %q", c.Identity(), testIdentity)
	}
	if _, err := c.EnclaveStatus(context.Background(), "e"); err != nil {
		t.Fatalf("EnclaveStatus err = %v", err)
	}
	if got := ts.last(t).identity; got != testIdentity {
		t.Fatalf("server saw identity %q, want %q", got, testIdentity)
	}

	other, _ := wire.GenerateAPIKey(bytes.NewReader(bytes.Repeat([]byte{5}, 32)))
	for name, key := range map[string]string{"OtherKey": other, "NoKey": ""} {
		c := newClient(t, key, ts.Server)
		_, err := c.EnclaveStatus(context.Background(), "e")
		if !errors.Is(err, ErrPermission) {
			t.Fatalf("%s: EnclaveStatus err = %v, want ErrPermission", name, err)
		}
	}
}

// commandCase is one command of the client: the request the server must
// receive for call, and what call returns from the server's answer.
type commandCase struct {
	name string
	path string
	cmd  wire.Command
	req  wire.Message // the request the server must receive
	resp wire.Message // the server's answer; nil for write commands
	call func(c *Client) (any, error)
	want any // what call must return
}

// runCommands runs each case against its own test server.
func runCommands(t *testing.T, tests []commandCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, func(f wire.Frame) ([]byte, *Error) {
				if tt.resp == nil {
					return nil, nil
				}
				return tt.resp.MarshalProto(), nil
			})
			if tt.resp == nil {
				ts.answer = nil // write commands: 200 with an empty body
			}
			c := newClient(t, testAPIKey, ts.Server)
			got, err := tt.call(c)
			if err != nil {
				t.Fatalf("%s err = %v, want nil", tt.name, err)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("%s = %+v, want %+v", tt.name, got, tt.want)
			}
			r := ts.last(t)
			if r.method != http.MethodPost || r.path != tt.path {
				t.Fatalf("request %s %s, want POST %s", r.method, r.path, tt.path)
			}
			if len(r.frames) != 1 || r.frames[0].Cmd != tt.cmd {
				t.Fatalf("request frames %+v, want one %v frame", r.frames, tt.cmd)
			}
			if !bytes.Equal(r.frames[0].Body, tt.req.MarshalProto()) {
				t.Fatalf("request body % x, want % x", r.frames[0].Body, tt.req.MarshalProto())
			}
		})
	}
}

// ts0 is the creation time of the test server's objects.
var ts0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestCommandsEnclaves(t *testing.T) {
	t.Parallel()
	enclave := wire.EnclaveStatusResponse{Name: "e", CreatedAt: ts0, CreatedBy: testIdentity}
	ctx := context.Background()
	runCommands(t, []commandCase{
		{"CreateEnclave", "/v1/kms", wire.CmdEnclaveCreate, &wire.CreateEnclaveRequest{Name: "e"}, nil,
			func(c *Client) (any, error) { return nil, c.CreateEnclave(ctx, "e") }, nil},
		{"DeleteEnclave", "/v1/kms", wire.CmdEnclaveDelete, &wire.DeleteEnclaveRequest{Name: "e"}, nil,
			func(c *Client) (any, error) { return nil, c.DeleteEnclave(ctx, "e") }, nil},
		{"EnclaveStatus", "/v1/kms", wire.CmdEnclaveStatus, &wire.EnclaveStatusRequest{Name: "e"}, &enclave,
			func(c *Client) (any, error) { return c.EnclaveStatus(ctx, "e") }, &enclave},
		{"ListEnclaves", "/v1/kms", wire.CmdEnclaveList, &wire.ListRequest{Prefix: "a", ContinueAt: "ab", Limit: 5},
			&wire.ListEnclavesResponse{Enclaves: []wire.EnclaveStatusResponse{enclave}, ContinueAt: "f"},
			func(c *Client) (any, error) { return c.ListEnclaves(ctx, "a", "ab", 5) },
			&wire.ListEnclavesResponse{Enclaves: []wire.EnclaveStatusResponse{enclave}, ContinueAt: "f"}},
		{"ClusterStatus", "/v1/kms", wire.CmdClusterStatus, &wire.ClusterStatusRequest{},
			&wire.ClusterStatusResponse{NodesDown: map[uint32]string{1: "h"}},
			func(c *Client) (any, error) { return c.ClusterStatus(ctx) },
			&wire.ClusterStatusResponse{NodesDown: map[uint32]string{1: "h"}}},
	})
}

func TestCommandsKeys(t *testing.T) {
	t.Parallel()
	key := wire.KeyStatusResponse{Name: "k", Version: 2, Type: wire.KeyTypeAES256, CreatedAt: ts0, CreatedBy: testIdentity}
	ctx := context.Background()
	runCommands(t, []commandCase{
		{"CreateKey", "/v1/kms/e1", wire.CmdKeyCreate, &wire.CreateKeyRequest{Name: "k", Type: "ChaCha20", AddVersion: true}, nil,
			func(c *Client) (any, error) { return nil, c.CreateKey(ctx, "e1", "k", "ChaCha20", true) }, nil},
		{"ImportKey", "/v1/kms/e1", wire.CmdKeyImport, &wire.ImportKeyRequest{Name: "k", Type: "AES256", Key: []byte("0123")}, nil,
			func(c *Client) (any, error) { return nil, c.ImportKey(ctx, "e1", "k", "AES256", []byte("0123")) }, nil},
		{"DeleteKey", "/v1/kms/e1", wire.CmdKeyDelete, &wire.DeleteKeyRequest{Name: "k", AllVersions: true}, nil,
			func(c *Client) (any, error) { return nil, c.DeleteKey(ctx, "e1", "k", 0, true) }, nil},
		{"KeyStatus", "/v1/kms/e1", wire.CmdKeyStatus, &wire.KeyStatusRequest{Name: "k", Version: 2}, &key,
			func(c *Client) (any, error) { return c.KeyStatus(ctx, "e1", "k", 2) }, &key},
		{"ListKeys", "/v1/kms/e1", wire.CmdKeyList, &wire.ListRequest{Prefix: "k"},
			&wire.ListKeysResponse{Keys: []wire.KeyStatusResponse{key}},
			func(c *Client) (any, error) { return c.ListKeys(ctx, "e1", "k", "", 0) },
			&wire.ListKeysResponse{Keys: []wire.KeyStatusResponse{key}}},
		{"Encrypt", "/v1/kms/e1", wire.CmdKeyEncrypt, &wire.EncryptRequest{Name: "k", Plaintext: []byte("pt"), AssociatedData: []byte("ad")},
			&wire.EncryptResponse{Version: 2, Ciphertext: []byte("ct")},
			func(c *Client) (any, error) { return c.Encrypt(ctx, "e1", "k", 0, []byte("pt"), []byte("ad")) },
			&wire.EncryptResponse{Version: 2, Ciphertext: []byte("ct")}},
		{"Decrypt", "/v1/kms/e1", wire.CmdKeyDecrypt, &wire.DecryptRequest{Name: "k", Ciphertext: []byte("ct"), AssociatedData: []byte("{}")},
			&wire.DecryptResponse{Plaintext: []byte("pt")},
			func(c *Client) (any, error) { return c.Decrypt(ctx, "e1", "k", 0, []byte("ct"), []byte("{}")) },
			&wire.DecryptResponse{Plaintext: []byte("pt")}},
		{"GenerateKey", "/v1/kms/e1", wire.CmdKeyGenerate, &wire.GenerateKeyRequest{Name: "my-key", AssociatedData: []byte("{}"), Length: 32},
			&wire.GenerateKeyResponse{Version: 1, Plaintext: bytes.Repeat([]byte{1}, 32), Ciphertext: []byte("ct")},
			func(c *Client) (any, error) { return c.GenerateKey(ctx, "e1", "my-key", 0, []byte("{}"), 32) },
			&wire.GenerateKeyResponse{Version: 1, Plaintext: bytes.Repeat([]byte{1}, 32), Ciphertext: []byte("ct")}},
		{"MAC", "/v1/kms/e1", wire.CmdKeyMAC, &wire.MACRequest{Name: "k", Version: 3, Message: []byte("m")},
			&wire.MACResponse{Version: 3, MAC: []byte("mac")},
			func(c *Client) (any, error) { return c.MAC(ctx, "e1", "k", 3, []byte("m")) },
			&wire.MACResponse{Version: 3, MAC: []byte("mac")}},
	})
}

func TestCommandsPolicies(t *testing.T) {
	t.Parallel()
	policy := wire.PolicyResponse{Name: "p", Allow: map[string][]string{"KEY:GENERATE": {"minio-*"}}}
	createPolicy := &wire.CreatePolicyRequest{Name: "p", Allow: policy.Allow, Deny: map[string][]string{"KEY:DELETE": {"*"}}}
	ctx := context.Background()
	runCommands(t, []commandCase{
		{"CreatePolicy", "/v1/kms/e1", wire.CmdPolicyCreate, createPolicy, nil,
			func(c *Client) (any, error) { return nil, c.CreatePolicy(ctx, "e1", createPolicy) }, nil},
		{"DeletePolicy", "/v1/kms/e1", wire.CmdPolicyDelete, &wire.DeletePolicyRequest{Name: "p"}, nil,
			func(c *Client) (any, error) { return nil, c.DeletePolicy(ctx, "e1", "p") }, nil},
		{"AssignPolicy", "/v1/kms/e1", wire.CmdPolicyAssign, &wire.AssignPolicyRequest{Identity: testIdentity, Policy: "p"}, nil,
			func(c *Client) (any, error) { return nil, c.AssignPolicy(ctx, "e1", testIdentity, "p") }, nil},
		{"GetPolicy", "/v1/kms/e1", wire.CmdPolicyGet, &wire.PolicyRequest{Name: "p"}, &policy,
			func(c *Client) (any, error) { return c.GetPolicy(ctx, "e1", "p") }, &policy},
		{"PolicyStatus", "/v1/kms/e1", wire.CmdPolicyStatus, &wire.PolicyRequest{Name: "p"}, &wire.PolicyStatusResponse{Name: "p"},
			func(c *Client) (any, error) { return c.PolicyStatus(ctx, "e1", "p") }, &wire.PolicyStatusResponse{Name: "p"}},
		{"ListPolicies", "/v1/kms/e1", wire.CmdPolicyList, &wire.ListRequest{ContinueAt: "p"},
			&wire.ListPoliciesResponse{Policies: []wire.PolicyStatusResponse{{Name: "p"}}},
			func(c *Client) (any, error) { return c.ListPolicies(ctx, "e1", "", "p", 0) },
			&wire.ListPoliciesResponse{Policies: []wire.PolicyStatusResponse{{Name: "p"}}}},
	})
}

func TestCommandsIdentities(t *testing.T) {
	t.Parallel()
	identity := wire.IdentityResponse{Identity: testIdentity, Privilege: wire.PrivilegeAdmin, Tags: map[string]string{"a": "b"}}
	createIdentity := &wire.CreateIdentityRequest{Identity: testIdentity, Privilege: "Admin", Tags: map[string]string{"a": "b"}}
	ctx := context.Background()
	runCommands(t, []commandCase{
		{"CreateIdentity", "/v1/kms/e1", wire.CmdIdentityCreate, createIdentity, nil,
			func(c *Client) (any, error) { return nil, c.CreateIdentity(ctx, "e1", createIdentity) }, nil},
		{"DeleteIdentity", "/v1/kms/e1", wire.CmdIdentityDelete, &wire.DeleteIdentityRequest{Identity: testIdentity}, nil,
			func(c *Client) (any, error) { return nil, c.DeleteIdentity(ctx, "e1", testIdentity) }, nil},
		{"GetIdentity", "/v1/kms/e1", wire.CmdIdentityStatus, &wire.IdentityRequest{Identity: testIdentity}, &identity,
			func(c *Client) (any, error) { return c.GetIdentity(ctx, "e1", testIdentity) }, &identity},
		{"ListIdentities", "/v1/kms/e1", wire.CmdIdentityList, &wire.ListRequest{Limit: 1},
			&wire.ListIdentitiesResponse{Identities: []wire.IdentityResponse{identity}, ContinueAt: "h1:z"},
			func(c *Client) (any, error) { return c.ListIdentities(ctx, "e1", "", "", 1) },
			&wire.ListIdentitiesResponse{Identities: []wire.IdentityResponse{identity}, ContinueAt: "h1:z"}},
	})
}

func TestErrorResponses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		status      int
		contentType string
		body        []byte
		want        *Error
		is          error
	}{
		{"Protobuf", 404, "application/octet-stream", (&wire.ErrResponse{Message: "key does not exist"}).MarshalProto(),
			&Error{404, "key does not exist"}, ErrKeyNotFound},
		{"JSON", 409, "application/json", []byte(`{"message":"key already exists"}`),
			&Error{409, "key already exists"}, ErrKeyExists},
		{"JSONCharset", 403, "application/json; charset=utf-8", []byte(`{"message":"access denied: insufficient permissions"}`),
			&Error{403, "access denied: insufficient permissions"}, ErrPermission},
		{"JSONErrorField", 500, "application/json", []byte(`{"error":"internal error"}`), &Error{500, "internal error"}, nil},
		{"Text", 400, "text/plain", []byte("invalid ciphertext\n"), &Error{400, "invalid ciphertext"}, ErrDecrypt},
		{"Empty", 503, "", nil, &Error{503, "Service Unavailable"}, nil},
		{"SameMessageOtherStatus", 500, "text/plain", []byte("key does not exist"), &Error{500, "key does not exist"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, nil)
			ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write(tt.body)
			})
			c := newClient(t, testAPIKey, ts.Server)
			err := c.CreateKey(context.Background(), "e", "k", "", false)
			var got *Error
			if !errors.As(err, &got) || *got != *tt.want {
				t.Fatalf("err = %#v, want %#v", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tt.is)
			}
			for _, s := range []*Error{ErrKeyNotFound, ErrKeyExists, ErrPermission, ErrDecrypt, ErrEnclaveNotFound} {
				if s != tt.is && errors.Is(err, s) {
					t.Fatalf("errors.Is(%v, %v) = true, want false", err, s)
				}
			}
			if want := tt.want.Message + " (status " + strconv.Itoa(tt.want.Status) + ")"; err.Error() != want {
				t.Fatalf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

func TestProtocolViolations(t *testing.T) {
	t.Parallel()
	key := func(typ, by string) []byte {
		return wire.AppendFrame(nil, wire.CmdKeyStatus, (&wire.KeyStatusResponse{Name: "k", Type: typ, CreatedBy: by}).MarshalProto())
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"NoFrames", func(w http.ResponseWriter, r *http.Request) { writeBody(w, nil) }},
		{"TwoFrames", func(w http.ResponseWriter, r *http.Request) {
			writeBody(w, append(key("AES256", ""), key("AES256", "")...))
		}},
		{"WrongCommand", func(w http.ResponseWriter, r *http.Request) {
			writeBody(w, wire.AppendFrame(nil, wire.CmdKeyGenerate, nil))
		}},
		{"TruncatedFrame", func(w http.ResponseWriter, r *http.Request) { writeBody(w, []byte{0, 204, 0, 0, 0, 9}) }},
		{"BadMessage", func(w http.ResponseWriter, r *http.Request) {
			writeBody(w, wire.AppendFrame(nil, wire.CmdKeyStatus, []byte{0x0a, 0x09}))
		}},
		{"BadKeyType", func(w http.ResponseWriter, r *http.Request) { writeBody(w, key("AES128", "")) }},
		{"BadCreatedBy", func(w http.ResponseWriter, r *http.Request) { writeBody(w, key("AES256", "root")) }},
		{"NoContentLength", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(key("AES256", "")[:3])
			w.(http.Flusher).Flush()
			_, _ = w.Write(key("AES256", "")[3:])
		}},
		{"Gzip", func(w http.ResponseWriter, r *http.Request) {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write(key("AES256", ""))
			_ = zw.Close()
			w.Header().Set("Content-Encoding", "gzip")
			writeBody(w, buf.Bytes())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, nil)
			ts.Config.Handler = tt.handler
			c := newClient(t, testAPIKey, ts.Server)
			if _, err := c.KeyStatus(context.Background(), "e", "k", 0); !errors.Is(err, ErrProtocol) {
				t.Fatalf("KeyStatus err = %v, want ErrProtocol", err)
			}
		})
	}
}

func TestSendBatch(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(f wire.Frame) ([]byte, *Error) {
		var req wire.GenerateKeyRequest
		_ = req.UnmarshalProto(f.Body)
		return (&wire.GenerateKeyResponse{Ciphertext: []byte(req.Name)}).MarshalProto(), nil
	})
	c := newClient(t, testAPIKey, ts.Server)
	var frames []wire.Frame
	for _, name := range []string{"a", "b", "c"} {
		frames = append(frames, wire.Frame{Cmd: wire.CmdKeyGenerate, Body: (&wire.GenerateKeyRequest{Name: name}).MarshalProto()})
	}
	out, err := c.Send(context.Background(), "e", frames)
	if err != nil || len(out) != 3 {
		t.Fatalf("Send = %d frames, %v; want 3, nil", len(out), err)
	}
	for i, name := range []string{"a", "b", "c"} {
		var resp wire.GenerateKeyResponse
		if err := resp.UnmarshalProto(out[i].Body); err != nil || string(resp.Ciphertext) != name || out[i].Cmd != wire.CmdKeyGenerate {
			t.Fatalf("frame %d = %v %+v, %v; want KEY:GENERATE %q", i, out[i].Cmd, resp, err, name)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	want := wire.VersionResponse{Version: "v1.0", Commit: "c", APIVersion: "v1", Host: "h:7373"}
	tests := []struct {
		name        string
		contentType string
		body        []byte
	}{
		{"Protobuf", "application/octet-stream", want.MarshalProto()},
		{"JSON", "application/json", []byte(`{"version":"v1.0","commit":"c","api_version":"v1","host":"h:7373"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, nil)
			ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/version" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", tt.contentType)
				w.Header().Set("Content-Length", strconv.Itoa(len(tt.body)))
				_, _ = w.Write(tt.body)
			})
			c := newClient(t, "", ts.Server) // /version needs no client certificate
			got, err := c.Version(context.Background())
			if err != nil || *got != want {
				t.Fatalf("Version = %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/health/live":
			w.WriteHeader(http.StatusOK)
		default:
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	})
	c := newClient(t, "", ts.Server)
	if err := c.Live(context.Background()); err != nil {
		t.Fatalf("Live err = %v, want nil", err)
	}
	var e *Error
	if err := c.Ready(context.Background()); !errors.As(err, &e) || e.Status != 503 || e.Message != "not ready" {
		t.Fatalf("Ready err = %v, want 503 not ready", err)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestRetryTransportErrors(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	c := newClient(t, testAPIKey, ts.Server)
	dead := closedAddr(t)
	c.hosts = []string{dead, strings.TrimPrefix(ts.URL, "https://")}
	// Whichever host a request starts at, it reaches the live one.
	for i := range 8 {
		if err := c.CreateEnclave(context.Background(), "e"); err != nil {
			t.Fatalf("request %d: err = %v, want nil", i, err)
		}
	}
	if ts.count() != 8 {
		t.Fatalf("live server got %d requests, want 8", ts.count())
	}
	c.mu.Lock()
	_, marked := c.failed[dead]
	c.mu.Unlock()
	if !marked {
		t.Fatal("dead host not marked as failed")
	}
	// Now the dead host is skipped as a start host.
	for range 8 {
		if got := c.hosts[c.startHost(time.Now())]; got == dead {
			t.Fatal("startHost chose a host that failed within FailureWindow")
		}
	}
	// After the window it is eligible again.
	c.mu.Lock()
	c.failed[dead] = time.Now().Add(-FailureWindow - time.Second)
	c.mu.Unlock()
	seen := false
	for range 64 {
		seen = seen || c.hosts[c.startHost(time.Now())] == dead
	}
	if !seen {
		t.Fatal("startHost never chose a host whose failure is older than FailureWindow")
	}
}

func TestAllHostsDown(t *testing.T) {
	t.Parallel()
	c, err := New(Config{Endpoints: []string{closedAddr(t), closedAddr(t)}, APIKey: testAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	var e *Error
	if err := c.CreateEnclave(context.Background(), "e"); err == nil || errors.As(err, &e) {
		t.Fatalf("err = %v, want a transport error", err)
	}
}

func TestHTTPErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	fail := func(f wire.Frame) ([]byte, *Error) { return nil, &Error{Status: 500, Message: "boom"} }
	a, b := newTestServer(t, fail), newTestServer(t, fail)
	c := newClient(t, testAPIKey, a.Server, b.Server)
	for range 4 {
		if err := c.CreateEnclave(context.Background(), "e"); !errors.Is(err, &Error{500, "boom"}) {
			t.Fatalf("err = %v, want boom (status 500)", err)
		}
	}
	if n := a.count() + b.count(); n != 4 {
		t.Fatalf("servers got %d requests, want 4 (one per call)", n)
	}
}

func TestCanceledContextIsNotRetried(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	c := newClient(t, testAPIKey, ts.Server, ts.Server)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.CreateEnclave(ctx, "e"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.failed) != 0 {
		t.Fatalf("failed hosts = %v, want none after cancellation", c.failed)
	}
}
