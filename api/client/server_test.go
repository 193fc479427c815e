package client

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/kmsledger/kmsledger/api/wire"
)

// testAPIKey and testIdentity are a known pair: testIdentity is the h1:
// identity of testAPIKey (the root actor of the golden events in
// testdata/events).
const (
	testAPIKey   = "k1:2COl4dS3G-cjHa3Q-9fUmOrq8yL0Q7a12HH_Yi0oiLw"
	testIdentity = "h1:1XtC8x9-VpkRibo1WuzcIAXzrpKIxLjlMErH9zkZkQE"
)

// request is one request the test server received.
type request struct {
	method, path string
	identity     string
	frames       []wire.Frame
}

// answer computes the response frame body for one request frame, or an error
// response.
type answer func(f wire.Frame) ([]byte, *Error)

// testServer is a TLS server that requires the client identity testIdentity
// on /v1/kms and answers frames with canned messages.
type testServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
	answer   answer        // nil: empty 200 body
	raw      func() []byte // when set, the whole 200 body
}

func newTestServer(t *testing.T, ans answer) *testServer {
	t.Helper()
	ts := &testServer{answer: ans}
	ts.Server = httptest.NewUnstartedServer(http.HandlerFunc(ts.handle))
	ts.EnableHTTP2 = true
	ts.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testServer) handle(w http.ResponseWriter, r *http.Request) {
	var id string
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		id = wire.IdentityFromCert(r.TLS.PeerCertificates[0])
	}
	body, _ := io.ReadAll(r.Body)
	frames, _ := wire.DecodeFrames(body)
	ts.mu.Lock()
	ts.requests = append(ts.requests, request{method: r.Method, path: r.URL.Path, identity: id, frames: frames})
	ts.mu.Unlock()

	if id != testIdentity {
		writeErr(w, ErrPermission)
		return
	}
	if r.Header.Get("Content-Type") != "application/octet-stream" || r.ContentLength != int64(len(body)) {
		writeErr(w, &Error{Status: http.StatusBadRequest, Message: "bad request headers"})
		return
	}
	var out []byte
	if ts.raw != nil {
		out = ts.raw()
	} else if ts.answer != nil {
		for _, f := range frames {
			resp, e := ts.answer(f)
			if e != nil {
				writeErr(w, e)
				return
			}
			out = wire.AppendFrame(out, f.Cmd, resp)
		}
	}
	writeBody(w, out)
}

func writeBody(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func writeErr(w http.ResponseWriter, e *Error) {
	b := (&wire.ErrResponse{Message: e.Message}).MarshalProto()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
}

func (ts *testServer) last(t *testing.T) request {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.requests) == 0 {
		t.Fatal("server received no request")
	}
	return ts.requests[len(ts.requests)-1]
}

func (ts *testServer) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.requests)
}

// newClient returns a client of ts with the test API key.
func newClient(t *testing.T, apiKey string, servers ...*httptest.Server) *Client {
	t.Helper()
	pool := x509.NewCertPool()
	var endpoints []string
	for _, s := range servers {
		pool.AddCert(s.Certificate())
		endpoints = append(endpoints, s.URL) // https://127.0.0.1:port; the scheme is stripped
	}
	c, err := New(Config{Endpoints: endpoints, APIKey: apiKey, RootCAs: pool})
	if err != nil {
		t.Fatalf("New err = %v", err)
	}
	t.Cleanup(c.Close)
	return c
}
