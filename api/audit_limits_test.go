package api_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
)

// auditModes are the two ways a server audits: batched (records stored
// every few milliseconds here) and sync.
var auditModes = []struct {
	name string
	cfg  ledger.AuditConfig
}{
	{"batched", ledger.AuditConfig{Interval: 5 * time.Millisecond}},
	{"sync", ledger.AuditConfig{Sync: true}},
}

// waitForRecord waits until a stored record satisfies ok and returns it.
func (s *auditStack) waitForRecord(t *testing.T, what string, ok func(r *ledger.AuditRecord) bool) ledger.AuditRecord {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, r := range s.records(t) {
			if ok(&r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stillServes checks that the server answers /v1/health/live and a
// GenerateKey of root in e1/k1.
func (s *auditStack) stillServes(t *testing.T, root *client.Client) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Roots}}, Timeout: 20 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("https://" + s.addr + "/v1/health/live")
	mustOK(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/health/live: status %d, want 200", resp.StatusCode)
	}
	g, err := root.GenerateKey(ctx, "e1", "k1", 0, []byte("ad"), 32)
	if err != nil || len(g.Plaintext) != 32 {
		t.Fatalf("GenerateKey after the attack err = %v, want a data key", err)
	}
}

// checkCut checks that rec's field was cut from n bytes, as its
// "truncated" list says.
func checkCut(t *testing.T, rec ledger.AuditRecord, field string, n int) {
	t.Helper()
	for _, c := range rec.Truncated {
		if c.Field == field && c.Len == n {
			return
		}
	}
	t.Errorf("record truncated = %v, want %s cut from %d bytes", rec.Truncated, field, n)
}

// TestAuditHugePathWithoutCertificate: a request without a certificate
// for /v1/admin/x/keys/ followed by 300,000 "%3C" (1.8 MB once '<' is
// JSON-escaped) is answered 403, its record is stored bounded and says
// the path and the key name were cut and how long they were, and the
// server keeps answering. (Before, the record was larger than the
// stream's message limit, the auditor retried it forever and every route
// stopped answering.)
//
// With the default limits such a request line is refused by the header
// limit (431) before any route sees it; the record bound is shown with the
// header limit raised past it, as an operator may.
func TestAuditHugePathWithoutCertificate(t *testing.T) {
	prefix := "/v1/admin/x/keys/"
	hugePath := prefix + strings.Repeat("%3C", 300_000)
	// get starts a node, sends the huge path without a certificate, wants
	// status, and checks that the node still serves.
	get := func(t *testing.T, cfg *ledger.AuditConfig, configure func(*api.Config), status int) (*auditStack, *client.Client) {
		t.Helper()
		s := startAuditStackWith(t, cfg, configure)
		root := s.client("")
		mustOK(t, root.CreateEnclave(ctx, "e1"))
		mustOK(t, root.CreateKey(ctx, "e1", "k1", "", false))
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Roots}}, Timeout: 20 * time.Second}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get("https://" + s.addr + hugePath)
		mustOK(t, err)
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Fatalf("huge path without a certificate: status %d, want %d", resp.StatusCode, status)
		}
		s.stillServes(t, root)
		return s, root
	}
	t.Run("default header limit", func(t *testing.T) {
		get(t, &ledger.AuditConfig{}, nil, http.StatusRequestHeaderFieldsTooLarge)
	})
	for _, m := range auditModes {
		t.Run(m.name, func(t *testing.T) {
			s, root := get(t, &m.cfg, func(c *api.Config) { c.Limits.MaxHeaderBytes = 2 << 20 }, http.StatusForbidden)

			rec := s.waitForRecord(t, "the huge path", func(r *ledger.AuditRecord) bool { return strings.HasPrefix(r.Path, prefix+"<<<") })
			if rec.Status != http.StatusForbidden || rec.Identity != "" || rec.Enclave != "x" || len(rec.Path) >= 300_000 {
				t.Errorf("record = status %d, identity %q, enclave %q, %d path bytes; want 403, none, x, cut", rec.Status, rec.Identity, rec.Enclave, len(rec.Path))
			}
			checkCut(t, rec, "path", len(prefix)+300_000)
			if len(rec.Items) != 1 || rec.Items[0].KeyLen != 300_000 || !strings.HasPrefix(rec.Items[0].Key, "<<<") || len(rec.Items[0].Key) >= 300_000 {
				t.Errorf("record items = %.200v, want one with the name cut and key_len 300000", rec.Items)
			}
			if st := s.auditor.Stats(); st.Dropped != 0 || st.Lost != 0 {
				t.Errorf("auditor stats = %+v, want nothing dropped or lost", st)
			}
			// What an auditor reads over the API says so too.
			l, err := root.AuditRequests(ctx, client.RequestFilter{Enclave: "x", Result: client.ResultDenied})
			mustOK(t, err)
			if len(l.Records) != 1 || len(l.Records[0].Truncated) == 0 || l.Records[0].Items[0].KeyLen != 300_000 {
				t.Errorf("GET /v1/ledger/requests = %.300v, want the record with its cuts", l.Records)
			}
		})
	}
}

// TestAuditHugeKeyName: a KEY:STATUS frame whose name is 1 MB of '<' is
// answered with a 4xx, its record is bounded and gives the name's
// length, and the server keeps answering.
func TestAuditHugeKeyName(t *testing.T) {
	for _, m := range auditModes {
		t.Run(m.name, func(t *testing.T) {
			s := startAuditStack(t, &m.cfg)
			root := s.client("")
			mustOK(t, root.CreateEnclave(ctx, "e1"))
			mustOK(t, root.CreateKey(ctx, "e1", "k1", "", false))

			name := strings.Repeat("<", 1_000_000)
			body := wire.EncodeFrames([]wire.Frame{{Cmd: wire.CmdKeyStatus, Body: (&wire.KeyStatusRequest{Name: name}).MarshalProto()}})
			status, _ := s.post(t, "e1", body, true)
			if status < 400 || status >= 500 {
				t.Fatalf("KEY:STATUS of a 1 MB name: status %d, want 4xx", status)
			}
			s.stillServes(t, root)

			rec := s.waitForRecord(t, "the huge name", func(r *ledger.AuditRecord) bool {
				return len(r.Items) == 1 && r.Items[0].Command == "KEY:STATUS"
			})
			if it := rec.Items[0]; it.KeyLen != len(name) || !strings.HasPrefix(name, it.Key) || len(it.Key) >= len(name) || rec.Status != status {
				t.Errorf("record = status %d, item key of %d bytes, key_len %d; want %d, a cut name, %d", rec.Status, len(it.Key), it.KeyLen, status, len(name))
			}
			if st := s.auditor.Stats(); st.Dropped != 0 || st.Lost != 0 {
				t.Errorf("auditor stats = %+v, want nothing dropped or lost", st)
			}
		})
	}
}

// TestAuditSlotsFull: while every audit slot is taken, a request is not
// served: it waits at most AuditConfig.Wait and gets 503, and its handler
// did not run (no key is created, no data key handed out). Once slots
// are free again, requests are served.
func TestAuditSlotsFull(t *testing.T) {
	for _, m := range auditModes {
		t.Run(m.name, func(t *testing.T) {
			cfg := m.cfg
			cfg.Batch, cfg.Wait = 2, 50*time.Millisecond
			s := startAuditStack(t, &cfg)
			root := s.client("")
			mustOK(t, root.CreateEnclave(ctx, "e1"))
			mustOK(t, root.CreateKey(ctx, "e1", "k1", "", false))

			var held []*ledger.AuditSlot // requests in flight elsewhere
			for range cfg.Batch {
				sl, err := s.auditor.Reserve(ctx)
				mustOK(t, err)
				held = append(held, sl)
			}
			var he *client.Error
			if err := root.CreateKey(ctx, "e1", "k2", "", false); !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable {
				t.Fatalf("CreateKey with no audit slot err = %v, want 503", err)
			}
			if g, err := root.GenerateKey(ctx, "e1", "k1", 0, nil, 32); !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable || g != nil {
				t.Fatalf("GenerateKey with no audit slot = (%v, %v), want no key and 503", g, err)
			}
			for _, sl := range held {
				sl.Release()
			}
			if _, err := root.KeyStatus(ctx, "e1", "k2", 0); !errors.Is(err, client.ErrKeyNotFound) {
				t.Fatalf("KeyStatus(k2) err = %v, want key not found: the refused CreateKey ran", err)
			}
			s.stillServes(t, root)
			if st := s.auditor.Stats(); st.Busy != 2 {
				t.Errorf("auditor stats = %+v, want 2 busy", st)
			}
		})
	}
}

// halfClosedGenerateKey sends one GenerateKey of root for e1/k1 on a new
// TLS connection, closes the connection's write side, and returns the
// status and body of the answer.
func (s *auditStack) halfClosedGenerateKey(t *testing.T) (int, []byte) {
	t.Helper()
	signer, err := wire.ParseAPIKey(s.RootKey)
	mustOK(t, err)
	cert, err := wire.ClientCertificate(signer)
	mustOK(t, err)
	conn, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.Roots, Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	mustOK(t, err)
	defer conn.Close()
	body := wire.EncodeFrames([]wire.Frame{{Cmd: wire.CmdKeyGenerate, Body: (&wire.GenerateKeyRequest{Name: "k1", Length: 32}).MarshalProto()}})
	fmt.Fprintf(conn, "POST /v1/kms/e1 HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", s.addr, len(body))
	_, err = conn.Write(body)
	mustOK(t, err)
	mustOK(t, conn.CloseWrite()) // the half-close: the server sees the client gone
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	mustOK(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	mustOK(t, err)
	return resp.StatusCode, b
}

// TestAuditHalfClosedClient: a client that half-closes its connection
// gets an answer only together with its record: served, its record is
// stored whatever the answer; with every slot taken, it is not served
// (503, no data key, no record). (Before,
// the record of a half-closed request that had to wait for a slot was
// dropped and the data key sent anyway.)
func TestAuditHalfClosedClient(t *testing.T) {
	for _, m := range auditModes {
		t.Run(m.name, func(t *testing.T) {
			cfg := m.cfg
			cfg.Batch, cfg.Wait = 2, 50*time.Millisecond
			s := startAuditStack(t, &cfg)
			root := s.client("")
			mustOK(t, root.CreateEnclave(ctx, "e1"))
			mustOK(t, root.CreateKey(ctx, "e1", "k1", "", false))
			isGen := func(r *ledger.AuditRecord) bool {
				return len(r.Items) == 1 && r.Items[0].Command == "KEY:GENERATE"
			}

			// Served (the handler may see its context cancelled and fail):
			// whatever the answer, its record is stored.
			status, _ := s.halfClosedGenerateKey(t)
			rec := s.waitForRecord(t, "the half-closed GenerateKey", isGen)
			if rec.Status != status {
				t.Fatalf("half-closed GenerateKey answered %d, recorded %d", status, rec.Status)
			}

			var held []*ledger.AuditSlot
			for range cfg.Batch {
				sl, err := s.auditor.Reserve(ctx)
				mustOK(t, err)
				held = append(held, sl)
			}
			status, body := s.halfClosedGenerateKey(t)
			for _, sl := range held {
				sl.Release()
			}
			if status != http.StatusServiceUnavailable || bytes.Contains(body, []byte{0, 0}) && len(body) > 64 {
				t.Fatalf("half-closed GenerateKey with every slot taken: status %d (%d bytes), want 503 without a key", status, len(body))
			}
			mustOK(t, s.auditor.Close())
			n := 0
			for _, r := range s.records(t) {
				if isGen(&r) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d records of a GenerateKey, want 1 (the refused one was not served)", n)
			}
		})
	}
}

// TestAuditDefaultEnclave: requests to /v1/kms (MinIO with an empty
// MINIO_KMS_ENCLAVE) are recorded in the enclave "default", where they
// act, and that enclave's Admin reads them in /v1/ledger/requests; root's
// enclave commands on /v1/kms are recorded in the enclave they name, and
// another identity's in none.
func TestAuditDefaultEnclave(t *testing.T) {
	s := startAuditStack(t, &ledger.AuditConfig{Sync: true})
	root := s.client("")
	adminKey, adminID := newIdentity(t)
	admin := s.client(adminKey)
	mustOK(t, root.CreateEnclave(ctx, "default"))
	mustOK(t, root.CreateIdentity(ctx, "default", &wire.CreateIdentityRequest{Identity: adminID, Privilege: "Admin"}))

	mustOK(t, root.CreateKey(ctx, "", "minio", "", false)) // POST /v1/kms
	if _, err := root.GenerateKey(ctx, "", "minio", 0, nil, 32); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.GenerateKey(ctx, "", "minio", 0, nil, 32); err != nil {
		t.Fatal(err)
	}
	mustOK(t, root.CreateEnclave(ctx, "e2")) // POST /v1/kms, ENCLAVE:CREATE e2
	if _, err := admin.EnclaveStatus(ctx, "e2"); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("EnclaveStatus(e2) by the default Admin err = %v, want access denied", err)
	}

	l, err := admin.AuditRequests(ctx, client.RequestFilter{Enclave: "default", Command: "KEY:*"})
	mustOK(t, err)
	var got []string
	for _, r := range l.Records {
		got = append(got, r.Items[0].Command+" "+r.Identity)
		if r.Enclave != "default" || r.Path != "/v1/kms" {
			t.Errorf("record %+v, want enclave default and path /v1/kms", r)
		}
	}
	if want := []string{"KEY:CREATE " + s.RootID, "KEY:GENERATE " + s.RootID, "KEY:GENERATE " + adminID}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("default Admin reads %v, want %v", got, want)
	}

	recs := s.records(t)
	enclaveOf := map[string][]string{}
	for _, r := range recs {
		if r.Path == "/v1/kms" && len(r.Items) == 1 && strings.HasPrefix(r.Items[0].Command, "ENCLAVE:") {
			who := "root"
			if r.Identity != s.RootID {
				who = "admin"
			}
			enclaveOf[who+" "+r.Items[0].Command] = append(enclaveOf[who+" "+r.Items[0].Command], r.Enclave)
		}
	}
	if want := map[string][]string{"root ENCLAVE:CREATE": {"default", "e2"}, "admin ENCLAVE:STATUS": {""}}; fmt.Sprint(enclaveOf) != fmt.Sprint(want) {
		t.Errorf("enclave commands on /v1/kms recorded in %v, want %v", enclaveOf, want)
	}
}
