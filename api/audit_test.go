package api_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// auditStack is a stack whose server audits every request and whose
// ledger is checkpointed, as the kmsledger server runs it.
type auditStack struct {
	*stack
	auditor *ledger.Auditor
	keys    map[string]ed25519.PublicKey // the checkpoint signing key
}

// startAuditStack starts a node on a fresh data dir with auditing cfg
// (nil: auditing off) and checkpoints, as the kmsledger server runs it.
func startAuditStack(t testing.TB, cfg *ledger.AuditConfig) *auditStack {
	t.Helper()
	return startAuditStackWith(t, cfg, nil)
}

// startAuditStackWith is startAuditStack with configure applied to the
// API configuration last.
func startAuditStackWith(t testing.TB, cfg *ledger.AuditConfig, configure func(*api.Config)) *auditStack {
	t.Helper()
	n := nodetest.Start(t, nodetest.Options{Audit: cfg, Checkpoints: true, Configure: configure})
	return &auditStack{stack: fromNode(t, n), auditor: n.Auditor, keys: n.SigningKeys}
}

// records returns every audit record stored so far.
func (s *auditStack) records(t *testing.T) []ledger.AuditRecord {
	t.Helper()
	var out []ledger.AuditRecord
	mustOK(t, s.Store.AuditRecords(ctx, 1, 0, func(_ uint64, r ledger.AuditRecord) error {
		out = append(out, r)
		return nil
	}))
	return out
}

// TestAuditEveryRequest: successes, denials, failed decrypts, requests
// without a certificate, bad requests and unknown routes are each
// recorded once, with the identity and the reason, and no record holds
// associated data, a plaintext or a ciphertext.
func TestAuditEveryRequest(t *testing.T) {
	s := startAuditStack(t, &ledger.AuditConfig{Sync: true})
	root := s.client("")
	userKey, userID := newIdentity(t)
	user := s.client(userKey)
	ad := []byte(`{"bucket":"audit-test/object"}`)
	adHash := sha256.Sum256(ad)

	mustOK(t, root.CreateEnclave(ctx, "e1"))
	mustOK(t, root.CreateKey(ctx, "e1", "k1", "", false))
	mustOK(t, root.CreateKey(ctx, "e1", "k1", "", true)) // version 2
	mustOK(t, root.CreateIdentity(ctx, "e1", &wire.CreateIdentityRequest{Identity: userID}))
	g, err := root.GenerateKey(ctx, "e1", "k1", 0, ad, 32)
	mustOK(t, err)
	if _, err := user.GenerateKey(ctx, "e1", "k1", 0, ad, 32); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("user GenerateKey err = %v, want access denied", err)
	}
	if _, err := root.Decrypt(ctx, "e1", "k1", 0, g.Ciphertext, []byte("other ad")); err == nil {
		t.Fatal("Decrypt with the wrong associated data err = nil")
	}
	if status, _ := s.post(t, "e1", nil, false); status != http.StatusForbidden {
		t.Fatalf("request without a certificate: status %d, want 403", status)
	}
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Roots}}}).Get("https://" + s.addr + "/no/such/route")
	mustOK(t, err)
	resp.Body.Close()

	recs := s.records(t)
	find := func(what string, ok func(r ledger.AuditRecord) bool) ledger.AuditRecord {
		t.Helper()
		i := slices.IndexFunc(recs, ok)
		if i < 0 {
			t.Fatalf("no audit record for %s in %d records", what, len(recs))
		}
		return recs[i]
	}
	isGen := func(r ledger.AuditRecord) bool { return len(r.Items) == 1 && r.Items[0].Command == "KEY:GENERATE" }
	ok := find("the GenerateKey", func(r ledger.AuditRecord) bool { return isGen(r) && r.Status == 200 })
	want := ledger.AuditItem{Command: "KEY:GENERATE", Key: "k1", Version: 2, ADSHA256: hex.EncodeToString(adHash[:])}
	if ok.Identity != s.RootID || ok.Enclave != "e1" || ok.Items[0] != want || ok.Route != "POST /v1/kms/{enclave}" || ok.Node == "" || ok.Client == "" {
		t.Errorf("GenerateKey record = %+v, want root, enclave e1, item %+v", ok, want)
	}
	denied := find("the denied GenerateKey", func(r ledger.AuditRecord) bool { return isGen(r) && r.Status == 403 })
	if denied.Identity != userID || !strings.Contains(denied.Error, "access denied") || denied.Items[0].Key != "k1" {
		t.Errorf("denied record = %+v, want the user's identity and access denied", denied)
	}
	dec := find("the failed Decrypt", func(r ledger.AuditRecord) bool {
		return len(r.Items) == 1 && r.Items[0].Command == "KEY:DECRYPT"
	})
	if dec.Identity != s.RootID || dec.Status != 400 || dec.Error != "invalid ciphertext" || dec.Items[0].Version != 2 {
		t.Errorf("failed Decrypt record = %+v, want root, 400 invalid ciphertext, version 2 (from the ciphertext)", dec)
	}
	anon := find("the request without a certificate", func(r ledger.AuditRecord) bool { return r.Identity == "" && r.Status == 403 })
	if anon.Path != "/v1/kms/e1" || !strings.Contains(anon.Error, "access denied") {
		t.Errorf("anonymous record = %+v", anon)
	}
	find("the unknown route", func(r ledger.AuditRecord) bool {
		return r.Path == "/no/such/route" && r.Status == 404 && r.Route == "" && r.Error == "404 page not found"
	})

	// Never the associated data, the data key or its ciphertext.
	body := auditBodies(t, s.stack)
	for what, b := range map[string][]byte{"associated data": ad, "plaintext": g.Plaintext, "ciphertext": g.Ciphertext,
		"ciphertext (base64)": []byte(base64.StdEncoding.EncodeToString(g.Ciphertext))} {
		if bytes.Contains(body, b) {
			t.Errorf("AUDIT holds the %s", what)
		}
	}
}

// auditBodies returns an unfiltered export: every stored LEDGER event
// and AUDIT record as stored.
func auditBodies(t *testing.T, s *stack) []byte {
	t.Helper()
	var b bytes.Buffer
	_, records, err := s.Store.Export(ctx, &b, ledger.ExportFilter{})
	mustOK(t, err)
	if records == 0 {
		t.Fatal("the export holds no audit records")
	}
	return b.Bytes()
}

// TestAuditSyncFailsClosed: in sync mode a request whose record cannot be
// stored is answered 503, not acknowledged unaudited.
func TestAuditSyncFailsClosed(t *testing.T) {
	s := startAuditStack(t, &ledger.AuditConfig{Sync: true})
	c := s.client("")
	mustOK(t, c.CreateEnclave(ctx, "e1"))
	mustOK(t, s.auditor.Close()) // records can no longer be stored
	err := c.CreateKey(ctx, "e1", "k1", "", false)
	var he *client.Error
	if !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable || !strings.Contains(he.Message, "audit") {
		t.Fatalf("CreateKey with a closed auditor err = %v, want 503 audit record could not be stored", err)
	}
}

// TestProvableShredding: after an imported key, one version of it, or
// its enclave is deleted, no file under the data dir holds the key's bytes
// or its sealed blob; the ledger keeps the deletion event with the key's
// fingerprint, replay shows the material destroyed, Decrypt fails as the
// protocol says, and the chain still verifies.
func TestProvableShredding(t *testing.T) {
	cases := []struct {
		name       string
		destroy    func(c *client.Client) error
		decryptErr error
		event      string // type of the deletion event
		destroyed  func(st *projections.State) bool
	}{
		{"key", func(c *client.Client) error { return c.DeleteKey(ctx, "e1", "imp", 0, true) }, client.ErrKeyNotFound,
			ledger.TypeKeyDeleted, func(st *projections.State) bool {
				e := st.Enclaves["e1"]
				return e.Keys["imp"] == nil && e.Tombstones["imp"] != nil
			}},
		{"version", func(c *client.Client) error { return c.DeleteKey(ctx, "e1", "imp", 1, false) }, client.ErrDecrypt,
			ledger.TypeKeyVersionDeleted, func(st *projections.State) bool {
				k := st.Enclaves["e1"].Keys["imp"]
				return k != nil && k.Version(1) == nil && k.Version(2) != nil
			}},
		{"enclave", func(c *client.Client) error { return c.DeleteEnclave(ctx, "e1") }, client.ErrEnclaveNotFound,
			ledger.TypeEnclaveDeleted, func(st *projections.State) bool { return st.Enclaves["e1"] == nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startAuditStack(t, &ledger.AuditConfig{Interval: time.Hour, Batch: 4})
			c := s.client("")
			defer c.Close()
			material := []byte("kmsledger-shred-me-0123456789abc") // 32 known bytes
			mustOK(t, c.CreateEnclave(ctx, "e1"))
			mustOK(t, c.ImportKey(ctx, "e1", "imp", "AES256", material))
			e, err := c.Encrypt(ctx, "e1", "imp", 1, []byte("secret"), nil)
			mustOK(t, err)
			mustOK(t, c.CreateKey(ctx, "e1", "imp", "", true)) // version 2
			var ref string
			s.Proj.View(func(st *projections.State) { ref = st.Enclaves["e1"].Keys["imp"].Version(1).SecretRef("e1", "imp") })
			sealed, err := s.Store.GetSecret(ctx, ref)
			mustOK(t, err)
			var fp string
			s.Proj.View(func(st *projections.State) { fp = st.Enclaves["e1"].Keys["imp"].Version(1).Fingerprint() })

			mustOK(t, tc.destroy(c))
			if _, err := c.Decrypt(ctx, "e1", "imp", 0, e.Ciphertext, nil); !errors.Is(err, tc.decryptErr) {
				t.Fatalf("Decrypt after deletion err = %v, want %v", err, tc.decryptErr)
			}
			s.Stop()
			scanDir(t, s.dir, map[string][]byte{"imported key": material, "sealed blob": sealed})

			ro, err := ledger.Open(ctx, ledger.Config{Dir: s.dir, ReadOnly: true})
			mustOK(t, err)
			defer ro.Close()
			rep, err := ro.Verify(ctx, ledger.VerifyOptions{Keys: s.keys})
			if err != nil || rep.Checkpoints == 0 || rep.Ledger.SignedThrough != rep.Ledger.Last {
				t.Fatalf("Verify after deletion = (%+v, %v), want a verified, fully signed history", rep, err)
			}
			proj, err := projections.Open(ctx, ro, nil, nil)
			mustOK(t, err)
			defer proj.Close()
			proj.View(func(st *projections.State) {
				if !tc.destroyed(st) {
					t.Error("the replayed state does not show the material destroyed")
				}
			})
			var commitment struct {
				Fingerprint  string   `json:"fingerprint"`
				Fingerprints []string `json:"fingerprints"`
			}
			_, err = ro.Replay(ctx, 1, func(ev ledger.Event) error {
				if ev.Type == tc.event {
					return json.Unmarshal(ev.Payload, &commitment)
				}
				return nil
			})
			mustOK(t, err)
			if commitment.Fingerprint != fp && !slices.Contains(commitment.Fingerprints, fp) {
				t.Fatalf("%s commits to %+v, want the destroyed version's fingerprint %s", tc.event, commitment, fp)
			}
		})
	}
}
