package api_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/api/wire"
)

// rawClient speaks raw HTTPS to a node, presenting certs (none: no
// certificate).
type rawClient struct {
	t    testing.TB
	base string
	http *http.Client
}

func (s *stack) raw(t testing.TB, certs ...tls.Certificate) *rawClient {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Roots, Certificates: certs, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &rawClient{t: t, base: "https://" + s.addr, http: &http.Client{Transport: tr}}
}

// rawAs returns a raw client with the certificate of apiKey ("" = root).
func (s *stack) rawAs(t testing.TB, apiKey string) *rawClient {
	if apiKey == "" {
		apiKey = s.RootKey
	}
	return s.raw(t, apiKeyCert(t, apiKey))
}

// do sends a request and returns the whole answer.
func (c *rawClient) do(method, path string, body []byte, header ...string) (int, http.Header, []byte) {
	c.t.Helper()
	resp := c.open(context.Background(), method, path, body, header...)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	mustOK(c.t, err)
	return resp.StatusCode, resp.Header, b
}

// open sends a request and returns the response, body unread.
func (c *rawClient) open(ctx context.Context, method, path string, body []byte, header ...string) *http.Response {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	mustOK(c.t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	mustOK(c.t, err)
	return resp
}

// TestProfiling: root starts a profiling, reads its status, and stops it
// for a TAR of the pprof files asked for; a second start or stop is a
// conflict; nobody else may, and bad queries start nothing.
func TestProfiling(t *testing.T) {
	s := newStack(t)
	adminKey := opsAdminKey(t, s)
	root := s.rawAs(t, "")
	status := func() wire.ProfileStatusResponse {
		code, h, b := root.do(http.MethodGet, "/v1/debug/pprof", nil, "Accept", "application/octet-stream")
		if code != http.StatusOK || h.Get("Content-Type") != "application/octet-stream" || h.Get("Content-Length") == "" {
			t.Fatalf("GET /v1/debug/pprof = %d %s %q, want 200 protobuf with a Content-Length", code, h.Get("Content-Type"), b)
		}
		var st wire.ProfileStatusResponse
		mustOK(t, st.UnmarshalProto(b))
		return st
	}
	for _, c := range []struct {
		name  string
		c     *rawClient
		query string
		want  int
	}{
		{"no certificate", s.raw(t), "?cpu=true", http.StatusForbidden},
		{"random certificate", s.raw(t, randomCert(t)), "?cpu=true", http.StatusForbidden},
		{"enclave Admin", s.rawAs(t, adminKey), "?cpu=true", http.StatusForbidden},
		{"cpu=maybe", root, "?cpu=maybe", http.StatusBadRequest},
		{"thread=green", root, "?thread=green", http.StatusBadRequest},
		{"block=-1", root, "?block=-1", http.StatusBadRequest},
		{"unknown parameter", root, "?gpu=true", http.StatusBadRequest},
		{"cpu twice", root, "?cpu=true&cpu=false", http.StatusBadRequest},
	} {
		if code, _, b := c.c.do(http.MethodPost, "/v1/debug/pprof"+c.query, nil); code != c.want {
			t.Fatalf("start as %s: %d %s, want %d", c.name, code, b, c.want)
		}
	}
	if st := status(); st.CPU || st.Heap || !st.Started.IsZero() {
		t.Fatalf("status after refused starts = %+v, want none running", st)
	}
	if code, _, b := root.do(http.MethodDelete, "/v1/debug/pprof", nil); code != http.StatusConflict {
		t.Fatalf("stop without a profiling: %d %s, want 409", code, b)
	}

	before := time.Now().Add(-time.Second)
	if code, _, b := root.do(http.MethodPost, "/v1/debug/pprof?cpu=true&heap=true&thread=all&block=1000&mutex=5", nil); code != http.StatusOK {
		t.Fatalf("start: %d %s", code, b)
	}
	st := status()
	if !st.CPU || !st.Heap || !st.Goroutine || !st.Thread || st.BlockRate != 1000 || st.MutexFraction != 5 || st.Started.Before(before) {
		t.Fatalf("status = %+v, want every profile, block 1000, mutex 5, started now", st)
	}
	if code, _, b := root.do(http.MethodPost, "/v1/debug/pprof?heap=true", nil); code != http.StatusConflict {
		t.Fatalf("second start: %d %s, want 409", code, b)
	}
	if code, _, b := s.rawAs(t, adminKey).do(http.MethodDelete, "/v1/debug/pprof", nil); code != http.StatusForbidden {
		t.Fatalf("stop as Admin: %d %s, want 403", code, b)
	}
	code, _, b := root.do(http.MethodDelete, "/v1/debug/pprof", nil)
	if code != http.StatusOK {
		t.Fatalf("stop: %d %s", code, b)
	}
	files := tarProfiles(t, b)
	for _, f := range []string{"cpu.pprof", "heap.pprof", "goroutine.pprof", "threadcreate.pprof", "block.pprof", "mutex.pprof"} {
		if !files[f] {
			t.Errorf("TAR has %v, want %s", files, f)
		}
	}
	if st := status(); st.CPU || !st.Started.IsZero() {
		t.Fatalf("status after stop = %+v, want none running", st)
	}
}

// tarProfiles returns the names of the files of a profile TAR, each
// checked to be a gzipped pprof profile.
func tarProfiles(t *testing.T, b []byte) map[string]bool {
	t.Helper()
	files := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		mustOK(t, err)
		data, err := io.ReadAll(tr)
		mustOK(t, err)
		if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
			t.Fatalf("%s: %d bytes, not a gzipped pprof profile", h.Name, len(data))
		}
		files[h.Name] = true
	}
}

// opsAdminKey makes enclave "ops" with an Admin and returns its API key.
func opsAdminKey(t *testing.T, s *stack) string {
	t.Helper()
	root := s.client("")
	mustOK(t, root.CreateEnclave(ctx, "ops"))
	key, id := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "ops", &wire.CreateIdentityRequest{Identity: id, Privilege: "Admin"}))
	return key
}

// logStream reads the records of a kms-go log stream.
func logStream(t *testing.T, resp *http.Response) <-chan wire.LogRecord {
	t.Helper()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/octet-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("log stream: %d %s %s, want 200 application/octet-stream", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	out := make(chan wire.LogRecord, 64)
	go func() {
		defer close(out)
		r := bufio.NewReader(resp.Body)
		var n [4]byte
		for {
			if _, err := io.ReadFull(r, n[:]); err != nil {
				return
			}
			size := binary.BigEndian.Uint32(n[:])
			if size > 4096 {
				t.Errorf("log record of %d bytes, kms-go reads at most 4096", size)
				return
			}
			b := make([]byte, size)
			if _, err := io.ReadFull(r, b); err != nil {
				return
			}
			var rec wire.LogRecord
			if err := rec.UnmarshalProto(b); err != nil {
				t.Errorf("log record: %v", err)
				return
			}
			out <- rec
		}
	}()
	return out
}

// TestDebugLog: root's log stream carries one record per request (the
// debug line) with the request's method, path, identity and IP, filtered
// as asked, and never a data key; nobody else may read it, and a bad
// request body is refused.
func TestDebugLog(t *testing.T) {
	s := newStack(t)
	adminKey := opsAdminKey(t, s)
	root := s.rawAs(t, "")
	mustOK(t, s.client("").CreateKey(ctx, "ops", "k", "", false))

	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := &wire.LogRequest{Level: -4, Path: "/v1/kms/ops"} // debug and up, the kms requests of ops
	resp := root.open(sctx, http.MethodPost, "/v1/debug/log", req.MarshalProto(), "Content-Type", "application/octet-stream")
	defer resp.Body.Close()
	recs := logStream(t, resp)

	s.client("").Live(ctx) // filtered out: another path
	gen, err := s.client(adminKey).GenerateKey(ctx, "ops", "k", 0, []byte("{}"), 32)
	mustOK(t, err)
	var rec wire.LogRecord
	for rec = range recs {
		if strings.Contains(rec.Message, "KEY:GENERATE") {
			break
		}
		if rec.Req == nil || rec.Req.Path != "/v1/kms/ops" {
			t.Fatalf("record %+v passed the path filter /v1/kms/ops", rec)
		}
	}
	if rec.Req == nil || rec.Req.Method != "POST" || rec.Req.Path != "/v1/kms/ops" || rec.Req.IP != "127.0.0.1" ||
		rec.Req.Identity != apitestIdentity(t, adminKey) || rec.Level != -4 || !strings.Contains(rec.Message, "status=200") {
		t.Fatalf("request record = %+v %+v, want the GenerateKey request of the Admin from 127.0.0.1 at debug level", rec, rec.Req)
	}
	pt := gen.Plaintext
	for _, enc := range []string{string(pt), hex.EncodeToString(pt), base64.StdEncoding.EncodeToString(pt), base64.RawURLEncoding.EncodeToString(pt)} {
		if strings.Contains(rec.Message, enc) {
			t.Fatal("the log record holds the data key")
		}
	}

	for _, c := range []struct {
		name string
		c    *rawClient
		body []byte
		want int
	}{
		{"no certificate", s.raw(t), nil, http.StatusForbidden},
		{"random certificate", s.raw(t, randomCert(t)), nil, http.StatusForbidden},
		{"enclave Admin", s.rawAs(t, adminKey), nil, http.StatusForbidden},
		{"malformed body", root, []byte{0x0a, 0x09, 'x'}, http.StatusBadRequest},
		{"oversized body", root, bytes.Repeat([]byte{0}, 5000), http.StatusRequestEntityTooLarge},
	} {
		if code, _, b := c.c.do(http.MethodPost, "/v1/debug/log", c.body); code != c.want {
			t.Errorf("log stream as %s: %d %s, want %d", c.name, code, b, c.want)
		}
	}
}

// apitestIdentity is the h1: identity of apiKey.
func apitestIdentity(t testing.TB, apiKey string) string {
	t.Helper()
	signer, err := wire.ParseAPIKey(apiKey)
	mustOK(t, err)
	id, err := wire.Identity(signer.Public())
	mustOK(t, err)
	return id
}

// TestLogStreamEndsAtShutdown: an open log stream does not hold up the
// node's shutdown: it ends, and the node stops.
func TestLogStreamEndsAtShutdown(t *testing.T) {
	s := newStack(t)
	resp := s.rawAs(t, "").open(ctx, http.MethodPost, "/v1/debug/log", nil)
	defer resp.Body.Close()
	recs := logStream(t, resp)
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	for range recs { // drains until the server ends the stream
	}
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("the node did not stop within 30 s of the stream's end")
	}
}

// TestLogStreamCarriesTheProcess: with Config.LogTee, the log stream
// carries what any logger teed by TeeLogger logs, not only the API's
// records, from the level asked for up.
func TestLogStreamCarriesTheProcess(t *testing.T) {
	procLog, tee := api.TeeLogger(slog.New(slog.DiscardHandler))
	n := nodetest.Start(t, nodetest.Options{Configure: func(c *api.Config) { c.Logger, c.LogTee = procLog, tee }})
	s := fromNode(t, n)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := &wire.LogRequest{Level: int32(slog.LevelWarn)}
	resp := s.rawAs(t, "").open(sctx, http.MethodPost, "/v1/debug/log", req.MarshalProto())
	defer resp.Body.Close()
	recs := logStream(t, resp)
	procLog.Info("below the level asked for")
	procLog.Warn("ledger: something to see", "stream", "LEDGER")
	rec, ok := <-recs
	if !ok || rec.Message != "ledger: something to see stream=LEDGER" || rec.Level != int32(slog.LevelWarn) || rec.Req == nil || rec.Req.IP != "0.0.0.0" {
		t.Fatalf("first record = %+v (ok %v), want the WARN record with an unspecified IP", rec, ok)
	}
}
