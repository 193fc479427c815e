package api_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/api/wire"
)

// answerWithin bounds how long a test waits for an answer the server must
// give without waiting for the body (far below the 30 s route deadline,
// so a server that read the body first would miss it).
const answerWithin = 10 * time.Second

// randomCert returns a client certificate of a fresh key (no identity).
func randomCert(t testing.TB) tls.Certificate {
	t.Helper()
	k, err := wire.GenerateAPIKey(rand.Reader)
	mustOK(t, err)
	return apiKeyCert(t, k)
}

// apiKeyCert returns the client certificate of an API key.
func apiKeyCert(t testing.TB, apiKey string) tls.Certificate {
	t.Helper()
	signer, err := wire.ParseAPIKey(apiKey)
	mustOK(t, err)
	c, err := wire.ClientCertificate(signer)
	mustOK(t, err)
	return c
}

// rawConn is a TLS connection on which a test writes requests byte by byte.
type rawConn struct {
	t testing.TB
	*tls.Conn
	br *bufio.Reader
}

// dialRaw connects to node n presenting cert (nil: none).
func dialRaw(t testing.TB, n *nodetest.Node, cert *tls.Certificate) *rawConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: n.Roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c, err := tls.Dial("tcp", n.Addr, cfg)
	mustOK(t, err)
	t.Cleanup(func() { c.Close() })
	mustOK(t, c.SetDeadline(time.Now().Add(answerWithin)))
	return &rawConn{t: t, Conn: c, br: bufio.NewReader(c)}
}

// send writes the request line and headers of a request announcing
// contentLength bytes, then the first bytes of the body.
func (c *rawConn) send(method, path string, contentLength int, body []byte) {
	c.t.Helper()
	head := method + " " + path + " HTTP/1.1\r\nHost: kmsledger\r\nContent-Length: " + strconv.Itoa(contentLength) + "\r\n\r\n"
	_, err := c.Write(append([]byte(head), body...))
	mustOK(c.t, err)
}

// answer reads the response; it fails the test if none arrives in time.
func (c *rawConn) answer() (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// closedByServer reports whether the server closed the connection: a read
// ends with EOF (or a reset) rather than with the test's deadline.
func (c *rawConn) closedByServer() bool {
	_, err := c.br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// kmsGenerate is the body of a GenerateKey request for key.
func kmsGenerate(key string) []byte {
	return wire.EncodeFrames([]wire.Frame{{Cmd: wire.CmdKeyGenerate, Body: (&wire.GenerateKeyRequest{Name: key}).MarshalProto()}})
}

// logBuffer collects a server's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestKMSAccessBeforeBody: on /v1/kms a random certificate announcing a
// body of almost 1 MiB and sending none of it is refused (403) at once and
// the connection is closed, so the body is never read; a member's request
// is served.
func TestKMSAccessBeforeBody(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	root := n.Client(t, "")
	mustOK(t, root.CreateEnclave(ctx, api.DefaultEnclave))
	mustOK(t, root.CreateKey(ctx, api.DefaultEnclave, "k", "", false))
	mustOK(t, root.CreateEnclave(ctx, "other"))
	otherKey, otherID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "other", &wire.CreateIdentityRequest{Identity: otherID, Privilege: "Admin"}))
	stranger, otherAdmin := randomCert(t), apiKeyCert(t, otherKey)

	for name, tc := range map[string]struct {
		cert *tls.Certificate
		path string
	}{
		"NoCertificate":       {nil, "/v1/kms"},
		"RandomCertificate":   {&stranger, "/v1/kms"},
		"RandomCertEnclave":   {&stranger, "/v1/kms/" + api.DefaultEnclave},
		"AdminOfOtherEnclave": {&otherAdmin, "/v1/kms/" + api.DefaultEnclave},
	} {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, n, tc.cert)
			c.send("POST", tc.path, api.MaxBody-1, []byte{0, 1})
			resp, body := c.answer()
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "access denied") {
				t.Fatalf("answer = %d %s, want 403 access denied", resp.StatusCode, body)
			}
			if !resp.Close || !c.closedByServer() {
				t.Fatal("connection left open after refusing an unread body")
			}
		})
	}
	t.Run("Member", func(t *testing.T) {
		c := dialRaw(t, n, ptr(apiKeyCert(t, n.RootKey)))
		b := kmsGenerate("k")
		c.send("POST", "/v1/kms", len(b), b)
		if resp, body := c.answer(); resp.StatusCode != http.StatusOK {
			t.Fatalf("answer = %d %s, want 200", resp.StatusCode, body)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestBodyLimits: a Content-Length above the route's limit is 413 before
// anything is read; a body shorter than its Content-Length is 400 with no
// ERROR logged; a member sending its body slower than the deadline has
// its connection cut by it; a well-formed request on the same server
// works.
func TestBodyLimits(t *testing.T) {
	var logs logBuffer
	n := nodetest.Start(t, nodetest.Options{Configure: func(c *api.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.Limits.RequestTimeout = 300 * time.Millisecond
		c.KESEnclave = api.DefaultEnclave
	}})
	root := n.Client(t, "")
	mustOK(t, root.CreateEnclave(ctx, api.DefaultEnclave))
	mustOK(t, root.CreateKey(ctx, api.DefaultEnclave, "k", "", false))
	rootCert := apiKeyCert(t, n.RootKey)

	t.Run("TooLarge", func(t *testing.T) {
		for _, path := range []string{"/v1/kms", "/v1/admin/default/keys/k/import"} {
			c := dialRaw(t, n, &rootCert)
			c.send("POST", path, 64<<20, nil)
			resp, body := c.answer()
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "request body too large") {
				t.Fatalf("%s: answer = %d %s, want 413", path, resp.StatusCode, body)
			}
			if !c.closedByServer() {
				t.Fatalf("%s: connection left open after refusing an unread body", path)
			}
		}
	})
	t.Run("Short", func(t *testing.T) {
		b := kmsGenerate("k")
		c := dialRaw(t, n, &rootCert)
		c.send("POST", "/v1/kms", len(b)+10, b)
		mustOK(t, c.CloseWrite()) // the body ends here, 10 bytes short
		resp, body := c.answer()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "shorter than its Content-Length") {
			t.Fatalf("answer = %d %s, want 400 body shorter than its Content-Length", resp.StatusCode, body)
		}
		kes := []byte(`{"context":""}`)
		c = dialRaw(t, n, &rootCert)
		c.send("POST", "/v1/key/generate/k", len(kes)+10, kes)
		mustOK(t, c.CloseWrite())
		if resp, body := c.answer(); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "shorter than its Content-Length") {
			t.Fatalf("KES answer = %d %s, want 400 body shorter than its Content-Length", resp.StatusCode, body)
		}
	})
	t.Run("Slow", func(t *testing.T) {
		b := kmsGenerate("k")
		c := dialRaw(t, n, &rootCert)
		c.send("POST", "/v1/kms", len(b), b[:3]) // the rest never comes
		resp, body := c.answer()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("answer = %d %s, want 408", resp.StatusCode, body)
		}
		if !c.closedByServer() {
			t.Fatal("connection left open after the deadline")
		}
	})
	t.Run("Friendly", func(t *testing.T) {
		if _, err := root.GenerateKey(ctx, api.DefaultEnclave, "k", 0, nil, 0); err != nil {
			t.Fatalf("GenerateKey = %v", err)
		}
	})
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("client errors logged as ERROR:\n%s", logs.String())
	}
}

// TestAdminAccessBeforeParse: an admin action or import with a malformed
// body is 403 for whoever may not run it (no certificate, a random one,
// a User allowed other commands, the Admin of another enclave), and 400
// only for an Admin; nothing changes.
func TestAdminAccessBeforeParse(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	root := n.Client(t, "")
	mustOK(t, root.CreateEnclave(ctx, "e"))
	mustOK(t, root.CreateEnclave(ctx, "o"))
	mustOK(t, root.CreateKey(ctx, "e", "k", "", false))
	userKey, userID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: userID}))
	mustOK(t, root.CreatePolicy(ctx, "e", &wire.CreatePolicyRequest{Name: "use", Allow: map[string][]string{"KEY:GENERATE": {"*"}, "KEY:DECRYPT": {"*"}}}))
	mustOK(t, root.AssignPolicy(ctx, "e", userID, "use"))
	adminKey, adminID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: adminID, Privilege: "Admin"}))
	otherKey, otherID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "o", &wire.CreateIdentityRequest{Identity: otherID, Privilege: "Admin"}))

	malformed := []byte(`{"version":`)
	paths := []string{"/v1/admin/e/keys/k/disable", "/v1/admin/e/keys/k/schedule-deletion", "/v1/admin/e/keys/k/import",
		"/v1/admin/e/keys/k/rewrap"}
	for name, cert := range map[string]*tls.Certificate{"NoCertificate": nil, "Random": ptr(randomCert(t)),
		"User": ptr(apiKeyCert(t, userKey)), "OtherAdmin": ptr(apiKeyCert(t, otherKey))} {
		for _, path := range paths {
			c := dialRaw(t, n, cert)
			c.send("POST", path, len(malformed), malformed)
			if resp, body := c.answer(); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s POST %s = %d %s, want 403", name, path, resp.StatusCode, body)
			}
		}
	}
	admin := apiKeyCert(t, adminKey)
	for _, path := range paths {
		c := dialRaw(t, n, &admin)
		c.send("POST", path, len(malformed), malformed)
		if resp, body := c.answer(); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "malformed") {
			t.Errorf("Admin POST %s = %d %s, want 400 malformed", path, resp.StatusCode, body)
		}
	}
	info, err := root.KeyInfo(ctx, "e", "k")
	mustOK(t, err)
	if info.State != "enabled" || len(info.Versions) != 1 {
		t.Fatalf("key after refused actions = %+v, want enabled with one version", info)
	}
}

// TestConnectionCaps: beyond MaxConnsPerIP connections from one address
// are closed at once while another address still gets through, up to
// MaxConns in all; a closed connection gives its place back.
func TestConnectionCaps(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{Configure: func(c *api.Config) {
		c.Limits.MaxConnsPerIP, c.Limits.MaxConns = 2, 3
	}})
	dialFrom := func(ip string) (*tls.Conn, error) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: answerWithin}
		c, err := tls.DialWithDialer(d, "tcp", n.Addr, &tls.Config{RootCAs: n.Roots, MinVersion: tls.VersionTLS12})
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { c.Close() })
		// The handshake may finish before the server's close arrives:
		// a request shows whether the server serves the connection.
		c.SetDeadline(time.Now().Add(answerWithin))
		if _, err := c.Write([]byte("GET /v1/health/live HTTP/1.1\r\nHost: kmsledger\r\n\r\n")); err != nil {
			return nil, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return c, nil
	}
	a1, err := dialFrom("127.0.0.1")
	mustOK(t, err)
	_, err = dialFrom("127.0.0.1")
	mustOK(t, err)
	if _, err := dialFrom("127.0.0.1"); err == nil {
		t.Fatal("third connection from 127.0.0.1 served, want refused (MaxConnsPerIP 2)")
	}
	if _, err := dialFrom("127.0.0.2"); err != nil {
		t.Fatalf("connection from 127.0.0.2: %v, want served", err)
	}
	if _, err := dialFrom("127.0.0.3"); err == nil {
		t.Fatal("fourth connection in all served, want refused (MaxConns 3)")
	}
	a1.Close()
	deadline := time.Now().Add(answerWithin)
	for {
		if _, err := dialFrom("127.0.0.3"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("connection after one was closed: %v, want served", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRouteTable walks the route table (with the KES API on): every route
// declares its access, a body limit and a deadline (at most 30 s; a log
// stream at most a day); only the health and
// version routes are open; every other route answers 403 to a random
// certificate and to none (KES: its own 400 for a missing certificate),
// whatever body it is sent.
func TestRouteTable(t *testing.T) {
	s := startStackKES(t)
	routes := api.New(api.Config{Handler: s.Handler, Projection: s.Proj, KESEnclave: kesEnclave}).RouteInfos()
	open := map[string]bool{"GET /version": true, "GET /v1/health/live": true, "GET /v1/health/ready": true, "GET /v1/ready": true}
	accesses := map[string]bool{"open": true, "identity": true, "root": true, "admin": true, "member": true, "command": true, "ledger": true, "metrics": true}
	concrete := strings.NewReplacer("{enclave}", kesEnclave, "{name}", "k", "{action}", "no-such-action", "{arg...}", "k")
	noCert, random := s.kesClient(""), s.kesClient("", randomCert(t))
	seenOpen := 0
	for _, rt := range routes {
		name := rt.Method + " " + rt.Path
		t.Run(name, func(t *testing.T) {
			maxTimeout, maxBody := 30*time.Second, int64(api.MaxBody)
			if rt.Stream {
				maxTimeout = 24 * time.Hour
			}
			if rt.Path == "/v1/db" { // backups: streamed, root only (db.go)
				maxTimeout, maxBody = time.Hour, api.DefaultMaxDBUpload
			}
			if !accesses[rt.Access] || rt.Timeout <= 0 || rt.Timeout > maxTimeout || rt.MaxBody < 0 || rt.MaxBody > maxBody {
				t.Fatalf("route %+v: want a known access, a timeout in (0, 30s] and a body limit in [0, 1 MiB] (/v1/db: 1 h, 4 GiB; log streams: 24 h)", rt)
			}
			if (rt.Access == "open") != open[name] {
				t.Fatalf("route %s has access %s; open routes are only %v", name, rt.Access, open)
			}
			if rt.Access == "open" {
				seenOpen++
				return
			}
			body := ""
			if rt.Method != http.MethodGet && rt.Method != http.MethodDelete {
				body = "{not json"
			}
			path := concrete.Replace(rt.Path)
			if r := random.on(t).do(rt.Method, path, body); r.status != http.StatusForbidden {
				t.Errorf("random certificate: %s %s = %d %s, want 403", rt.Method, path, r.status, r.body)
			}
			r := noCert.on(t).do(rt.Method, path, body)
			want := http.StatusForbidden
			if rt.KES {
				want = http.StatusBadRequest // KES clients read "tls: client certificate is required"
			}
			if r.status != want {
				t.Errorf("no certificate: %s %s = %d %s, want %d", rt.Method, path, r.status, r.body, want)
			}
		})
	}
	if seenOpen != len(open) {
		t.Fatalf("%d open routes served, want %d (%v)", seenOpen, len(open), open)
	}
}
