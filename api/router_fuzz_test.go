package api_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
)

// fuzzMethods are the methods FuzzRouter picks from.
var fuzzMethods = []string{"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "BREW"}

// FuzzRouter sends random methods, paths, headers and bodies, with no
// certificate, a random certificate, a narrow User's or root's, to a whole
// node (TLS, router, audit in sync mode, KES API on). It checks:
//
//   - every request gets an HTTP answer (no panic, no dropped connection);
//   - no answer is a 5xx other than 501 (a client's mistake is never the
//     server's error);
//   - every request is audited: nothing dropped or lost, and at the end
//     every stored record is at most ledger.MaxAuditRecord bytes and there
//     is at least one per request;
//   - afterwards the server still answers /v1/health/live.
//
// Run it with:
//
//	go test ./api -run '^$' -fuzz FuzzRouter -fuzztime 60s
func FuzzRouter(f *testing.F) {
	n, clients := fuzzRouterNode(f)
	var sent atomic.Int64
	f.Cleanup(func() { checkAfterFuzzing(f, n, clients[0], sent.Load()) })

	kmsBody := wire.AppendFrame(nil, wire.CmdKeyGenerate, (&wire.GenerateKeyRequest{Name: "k", Length: 32}).MarshalProto())
	f.Add(uint8(1), "v1/kms/e1", "Content-Type", "application/octet-stream", kmsBody, uint8(2))
	f.Add(uint8(1), "v1/kms", "", "", kmsBody, uint8(1))
	f.Add(uint8(1), "v1/kms/e1", "Content-Length", "1048575", []byte{0}, uint8(1))
	f.Add(uint8(0), "v1/admin/x/keys/"+strings.Repeat("%3C", 2500), "", "", []byte(nil), uint8(0))
	f.Add(uint8(1), "v1/admin/e1/keys/k/disable", "", "", []byte(`{"version":`), uint8(2))
	f.Add(uint8(1), "v1/admin/e1/keys/k/import", "", "", []byte(`{"key":"AAAA"}`), uint8(3))
	f.Add(uint8(2), "v1/key/create/x", "", "", []byte(nil), uint8(1))
	f.Add(uint8(2), "v1/key/generate/k", "", "", []byte(`{"context":""}`), uint8(2))
	f.Add(uint8(0), "v1/ledger/state", "", "", []byte(nil), uint8(2))
	f.Add(uint8(0), "v1/ledger/requests?enclave=e1&limit=999999999", "", "", []byte(nil), uint8(3))
	f.Add(uint8(0), "v1/health/ready?write", "Accept", "application/octet-stream", []byte(nil), uint8(0))
	f.Add(uint8(3), "v1/admin/hsm/x", "", "", []byte(nil), uint8(2))
	f.Add(uint8(7), "v1/kms/../../etc/passwd", "Transfer-Encoding", "chunked", []byte("zzz"), uint8(3))

	f.Fuzz(func(t *testing.T, method uint8, path, hdrName, hdrValue string, body []byte, who uint8) {
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		req, err := http.NewRequest(m, "https://"+n.Addr+"/"+path, bytes.NewReader(body))
		if err != nil || len(req.URL.String()) > 8<<10 {
			return // not a request a client can send
		}
		if validHeader(hdrName, hdrValue) {
			req.Header.Set(hdrName, hdrValue)
		}
		sent.Add(1)
		resp, err := clients[int(who)%len(clients)].Do(req)
		if err != nil {
			t.Fatalf("%s /%.200s: no answer: %v", m, path, err)
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 8<<20))
		resp.Body.Close()
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented {
			t.Fatalf("%s /%.200s (header %q): status %d, want no 5xx for a client's request", m, path, hdrName, resp.StatusCode)
		}
	})
}

// fuzzRouterNode starts the node of FuzzRouter (audit in sync mode, KES
// API on enclave e1 with key k) and returns it with its clients: no
// certificate, a random certificate, a User allowed only KEY:GENERATE on
// k, and root.
func fuzzRouterNode(f *testing.F) (*nodetest.Node, []*http.Client) {
	n := nodetest.Start(f, nodetest.Options{Audit: &ledger.AuditConfig{Sync: true}, Configure: func(c *api.Config) {
		c.KESEnclave = "e1"
	}})
	f.Helper()
	ctx := context.Background()
	root := n.Client(f, "")
	if err := root.CreateEnclave(ctx, "e1"); err != nil {
		f.Fatal(err)
	}
	if err := root.CreateKey(ctx, "e1", "k", "", false); err != nil {
		f.Fatal(err)
	}
	userKey, userID := nodetest.NewIdentity(f)
	if err := root.CreatePolicy(ctx, "e1", &wire.CreatePolicyRequest{Name: "narrow", Allow: map[string][]string{"KEY:GENERATE": {"k"}}}); err != nil {
		f.Fatal(err)
	}
	if err := root.CreateIdentity(ctx, "e1", &wire.CreateIdentityRequest{Identity: userID}); err != nil {
		f.Fatal(err)
	}
	if err := root.AssignPolicy(ctx, "e1", userID, "narrow"); err != nil {
		f.Fatal(err)
	}
	clients := []*http.Client{
		fuzzClient(f, n.Roots),
		fuzzClient(f, n.Roots, randomCert(f)),
		fuzzClient(f, n.Roots, apiKeyCert(f, userKey)),
		fuzzClient(f, n.Roots, apiKeyCert(f, n.RootKey)),
	}
	return n, clients
}

// checkAfterFuzzing checks, after sent fuzzed requests, that the node
// still answers and audited every request within the record size limit.
func checkAfterFuzzing(f *testing.F, n *nodetest.Node, c *http.Client, sent int64) {
	ctx := context.Background()
	resp, err := c.Get("https://" + n.Addr + "/v1/health/live")
	if err != nil {
		f.Errorf("/v1/health/live after fuzzing: %v", err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusOK {
		f.Errorf("/v1/health/live after fuzzing: status %d", resp.StatusCode)
	}
	if st := n.Auditor.Stats(); st.Dropped != 0 || st.Lost != 0 || st.Busy != 0 {
		f.Errorf("auditor stats %+v, want nothing dropped, lost or busy", st)
	}
	var records int64
	err = n.Store.AuditRecords(ctx, 1, 0, func(seq uint64, r ledger.AuditRecord) error {
		records++
		if b, _ := json.Marshal(r); len(b) > ledger.MaxAuditRecord {
			f.Errorf("audit record at %d is %d bytes, more than %d", seq, len(b), ledger.MaxAuditRecord)
		}
		return nil
	})
	if err != nil {
		f.Error(err)
	}
	if records < sent {
		f.Errorf("%d audit records for %d fuzzed requests", records, sent)
	}
}

// validHeader reports whether a fuzzed header is one an HTTP client can
// send and the fuzz test means to send (Host and framing stay the
// client's).
func validHeader(name, value string) bool {
	if name == "" || len(name) > 64 || len(value) > 1024 {
		return false
	}
	switch http.CanonicalHeaderKey(name) {
	case "Host", "Transfer-Encoding", "Connection", "Content-Length", "Trailer", "Te", "Upgrade", "Expect":
		return false
	}
	for _, c := range name {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	for _, c := range value {
		if c < ' ' || c == 0x7f || c > 0x7e {
			return false
		}
	}
	return true
}

// fuzzClient is an HTTPS client trusting roots, presenting cert if given.
func fuzzClient(tb testing.TB, roots *x509.CertPool, cert ...tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	cfg.Certificates = cert
	tr := &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 4}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
