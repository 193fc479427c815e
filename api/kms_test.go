package api_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
)

var ctx = context.Background()

func mustOK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestKeyLifecycle(t *testing.T) {
	s := newStack(t)
	c := s.client("")
	mustOK(t, c.CreateEnclave(ctx, "e1"))
	if err := c.CreateEnclave(ctx, "e1"); !errors.Is(err, client.ErrEnclaveExists) {
		t.Fatalf("CreateEnclave twice err = %v, want ErrEnclaveExists", err)
	}
	for _, typ := range []string{"", "AES256", "ChaCha20"} {
		checkNewKey(t, s, c, typ)
	}
	if err := c.CreateKey(ctx, "e1", "key-aes256", "", false); !errors.Is(err, client.ErrKeyExists) {
		t.Fatalf("CreateKey twice err = %v, want ErrKeyExists", err)
	}
	if err := c.CreateKey(ctx, "e1", "bad", "DES", false); err == nil || !strings.Contains(err.Error(), "key type") {
		t.Fatalf("CreateKey(type DES) err = %v, want a key type error", err)
	}

	// Lengths: 0 -> 32, 64, 1024; 1025 is refused.
	for _, n := range []uint32{1, 64, 1024} {
		g, err := c.GenerateKey(ctx, "e1", "key-aes256", 0, nil, n)
		mustOK(t, err)
		if len(g.Plaintext) != int(n) {
			t.Fatalf("GenerateKey(length %d) = %d bytes", n, len(g.Plaintext))
		}
	}
	if _, err := c.GenerateKey(ctx, "e1", "key-aes256", 0, nil, 1025); err == nil {
		t.Fatal("GenerateKey(length 1025) err = nil, want 400")
	}

	checkRotation(t, c)

	// Enclave deletion takes the keys with it.
	mustOK(t, c.DeleteEnclave(ctx, "e1"))
	if _, err := c.EnclaveStatus(ctx, "e1"); !errors.Is(err, client.ErrEnclaveNotFound) {
		t.Fatalf("EnclaveStatus(deleted) err = %v, want ErrEnclaveNotFound", err)
	}
	if err := c.CreateKey(ctx, "e1", "k", "", false); !errors.Is(err, client.ErrEnclaveNotFound) {
		t.Fatalf("CreateKey in deleted enclave err = %v, want ErrEnclaveNotFound", err)
	}
}

// checkNewKey creates a key of type typ ("" = the default) in e1 and
// checks its status, data keys and encryption, and that a wrong
// associated data fails.
func checkNewKey(t *testing.T, s *stack, c *client.Client, typ string) {
	t.Helper()
	name := "key-" + strings.ToLower(typ)
	mustOK(t, c.CreateKey(ctx, "e1", name, typ, false))
	st, err := c.KeyStatus(ctx, "e1", name, 0)
	mustOK(t, err)
	want := typ
	if want == "" {
		want = "AES256"
	}
	if st.Type != want || st.Version != 1 || st.CreatedBy != s.RootID {
		t.Fatalf("KeyStatus(%s) = %+v, want type %s version 1 by root", name, st, want)
	}
	ad := []byte(`{"bucket":"bucket/object"}`)
	g, err := c.GenerateKey(ctx, "e1", name, 0, ad, 0)
	mustOK(t, err)
	if len(g.Plaintext) != 32 || g.Version != 1 {
		t.Fatalf("GenerateKey = %d bytes v%d, want 32 bytes v1", len(g.Plaintext), g.Version)
	}
	d, err := c.Decrypt(ctx, "e1", name, 0, g.Ciphertext, ad)
	mustOK(t, err)
	if !bytes.Equal(d.Plaintext, g.Plaintext) {
		t.Fatal("Decrypt(GenerateKey) != plaintext")
	}
	if _, err := c.Decrypt(ctx, "e1", name, 0, g.Ciphertext, []byte(`{"bucket":"bucket/other"}`)); !errors.Is(err, client.ErrDecrypt) {
		t.Fatalf("Decrypt with wrong AD err = %v, want ErrDecrypt", err)
	}
	e, err := c.Encrypt(ctx, "e1", name, 0, []byte("hello"), nil)
	mustOK(t, err)
	d, err = c.Decrypt(ctx, "e1", name, 0, e.Ciphertext, nil)
	mustOK(t, err)
	if string(d.Plaintext) != "hello" {
		t.Fatalf("Decrypt(Encrypt(hello)) = %q", d.Plaintext)
	}
}

// checkRotation: new data keys use the latest version of key-aes256 and
// old ciphertexts still decrypt; deleting a version makes its
// ciphertexts fail, deleting the key all of them.
func checkRotation(t *testing.T, c *client.Client) {
	t.Helper()
	g1, err := c.GenerateKey(ctx, "e1", "key-aes256", 0, nil, 0)
	mustOK(t, err)
	mustOK(t, c.CreateKey(ctx, "e1", "key-aes256", "", true))
	g2, err := c.GenerateKey(ctx, "e1", "key-aes256", 0, nil, 0)
	mustOK(t, err)
	if g1.Version != 1 || g2.Version != 2 {
		t.Fatalf("versions = %d, %d, want 1, 2", g1.Version, g2.Version)
	}
	for _, g := range []*wire.GenerateKeyResponse{g1, g2} {
		d, err := c.Decrypt(ctx, "e1", "key-aes256", 0, g.Ciphertext, nil)
		mustOK(t, err)
		if !bytes.Equal(d.Plaintext, g.Plaintext) {
			t.Fatalf("Decrypt(v%d) wrong plaintext", g.Version)
		}
	}
	// Deleting version 1 makes its ciphertexts fail, version 2 still works.
	mustOK(t, c.DeleteKey(ctx, "e1", "key-aes256", 1, false))
	if _, err := c.Decrypt(ctx, "e1", "key-aes256", 0, g1.Ciphertext, nil); !errors.Is(err, client.ErrDecrypt) {
		t.Fatalf("Decrypt(deleted version) err = %v, want ErrDecrypt", err)
	}
	if _, err := c.Decrypt(ctx, "e1", "key-aes256", 0, g2.Ciphertext, nil); err != nil {
		t.Fatalf("Decrypt(v2) after deleting v1 err = %v", err)
	}
	mustOK(t, c.DeleteKey(ctx, "e1", "key-aes256", 0, true))
	if _, err := c.Decrypt(ctx, "e1", "key-aes256", 0, g2.Ciphertext, nil); !errors.Is(err, client.ErrKeyNotFound) {
		t.Fatalf("Decrypt(deleted key) err = %v, want ErrKeyNotFound", err)
	}
	if _, err := c.KeyStatus(ctx, "e1", "key-aes256", 0); !errors.Is(err, client.ErrKeyNotFound) {
		t.Fatalf("KeyStatus(deleted key) err = %v, want ErrKeyNotFound", err)
	}
}

func TestTamperedAndForeignCiphertexts(t *testing.T) {
	s := newStack(t)
	c := s.client("")
	mustOK(t, c.CreateEnclave(ctx, "e1"))
	mustOK(t, c.CreateEnclave(ctx, "e2"))
	mustOK(t, c.CreateKey(ctx, "e1", "k", "", false))
	mustOK(t, c.CreateKey(ctx, "e1", "other", "", false))
	mustOK(t, c.CreateKey(ctx, "e2", "k", "", false))
	g, err := c.GenerateKey(ctx, "e1", "k", 0, []byte("ad"), 0)
	mustOK(t, err)
	for i := range len(g.Ciphertext) * 8 {
		ct := bytes.Clone(g.Ciphertext)
		ct[i/8] ^= 1 << (i % 8)
		if _, err := c.Decrypt(ctx, "e1", "k", 0, ct, []byte("ad")); !errors.Is(err, client.ErrDecrypt) {
			t.Fatalf("Decrypt(bit %d flipped) err = %v, want ErrDecrypt", i, err)
		}
	}
	for _, tc := range []struct{ enclave, key string }{{"e1", "other"}, {"e2", "k"}} {
		if _, err := c.Decrypt(ctx, tc.enclave, tc.key, 0, g.Ciphertext, []byte("ad")); !errors.Is(err, client.ErrDecrypt) {
			t.Fatalf("Decrypt with %s/%s err = %v, want ErrDecrypt", tc.enclave, tc.key, err)
		}
	}
	if _, err := c.Decrypt(ctx, "e1", "k", 0, g.Ciphertext[:10], []byte("ad")); !errors.Is(err, client.ErrDecrypt) {
		t.Fatalf("Decrypt(truncated) err = %v, want ErrDecrypt", err)
	}
}

// TestConcurrentCreate: 8 goroutines race to create the same key; exactly
// one wins, the others get 409 key already exists.
func TestConcurrentCreate(t *testing.T) {
	s := newStack(t)
	mustOK(t, s.client("").CreateEnclave(ctx, "e1"))
	for round := range 5 {
		name := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.client("").CreateKey(ctx, "e1", name, "", false)
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, client.ErrKeyExists):
				t.Fatalf("CreateKey race err = %v, want nil or ErrKeyExists", err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d creations succeeded, want exactly 1", round, ok)
		}
	}
}

// TestRestartRebuildsState: the state after a restart, rebuilt from the
// ledger alone, equals the state before, and keys still decrypt.
func TestRestartRebuildsState(t *testing.T) {
	s := newStack(t)
	c := s.client("")
	userKey, userID := newIdentity(t)
	_ = userKey
	mustOK(t, c.CreateEnclave(ctx, "e1"))
	mustOK(t, c.CreateEnclave(ctx, "gone"))
	mustOK(t, c.CreateKey(ctx, "e1", "k1", "", false))
	mustOK(t, c.CreateKey(ctx, "e1", "k1", "", true))
	mustOK(t, c.CreateKey(ctx, "e1", "k2", "ChaCha20", false))
	mustOK(t, c.CreateKey(ctx, "e1", "k3", "", false))
	mustOK(t, c.DeleteKey(ctx, "e1", "k3", 0, true))
	mustOK(t, c.ImportKey(ctx, "e1", "imp", "AES256", bytes.Repeat([]byte{7}, 32)))
	mustOK(t, c.CreatePolicy(ctx, "e1", &wire.CreatePolicyRequest{Name: "p", Allow: map[string][]string{"KEY:GENERATE": {"k*"}}}))
	mustOK(t, c.CreateIdentity(ctx, "e1", &wire.CreateIdentityRequest{Identity: userID, Tags: map[string]string{"a": "b"}}))
	mustOK(t, c.AssignPolicy(ctx, "e1", userID, "p"))
	mustOK(t, c.DeleteEnclave(ctx, "gone"))
	g, err := c.GenerateKey(ctx, "e1", "k2", 0, []byte("x"), 0)
	mustOK(t, err)
	before := s.stateJSON()

	s = s.restart()
	if after := s.stateJSON(); after != before {
		t.Fatalf("state after restart differs:\nbefore %s\nafter  %s", before, after)
	}
	d, err := s.client("").Decrypt(ctx, "e1", "k2", 0, g.Ciphertext, []byte("x"))
	mustOK(t, err)
	if !bytes.Equal(d.Plaintext, g.Plaintext) {
		t.Fatal("Decrypt after restart returned other bytes")
	}
}

// TestWrongHSMKeyRefusesAndWritesNothing: a restart with another HSM key
// fails and leaves the ledger as it was.
func TestWrongHSMKeyRefusesAndWritesNothing(t *testing.T) {
	s := newStack(t)
	mustOK(t, s.client("").CreateEnclave(ctx, "e1"))
	head, err := s.Store.Head(ctx)
	mustOK(t, err)
	s.Stop()
	other := newStack(t).hsmKey
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { recover() }()
		startStack(ft, s.dir, other)
	}()
	if !ft.failed || !strings.Contains(ft.msg, "unseal") {
		t.Fatalf("start with the wrong HSM key: failed=%v msg=%q, want an unseal failure", ft.failed, ft.msg)
	}
	s = startStack(t, s.dir, s.hsmKey)
	if h, _ := s.Store.Head(ctx); h != head {
		t.Fatalf("ledger head after refused start = %d, want %d", h, head)
	}
}

// fatalRecorder turns Fatal into a recorded failure plus a panic, to test
// that a helper fails.
type fatalRecorder struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fatalRecorder) Fatal(args ...any) {
	f.failed, f.msg = true, fmt.Sprint(args...)
	panic("fatal")
}

// TestNoPlaintextOnDisk scans every file of the data dir for imported key
// material and for a generated data key.
func TestNoPlaintextOnDisk(t *testing.T) {
	s := newStack(t)
	c := s.client("")
	material := []byte("kmsledger-test-key-material-3210")
	mustOK(t, c.CreateEnclave(ctx, "e1"))
	mustOK(t, c.ImportKey(ctx, "e1", "imp", "AES256", material))
	mustOK(t, c.CreateKey(ctx, "e1", "gen", "", false))
	g, err := c.GenerateKey(ctx, "e1", "gen", 0, nil, 64)
	mustOK(t, err)
	s.Stop()
	scanDir(t, s.dir, map[string][]byte{"imported key": material, "data key": g.Plaintext})
}

// scanDir looks for each secret, as bytes, base64 or hex, in every file
// of the stopped node's data dir and in every event of its ledger as
// read back (a single node stores events compressed: a file scan alone
// could miss what an event holds).
func scanDir(t *testing.T, dir string, secrets map[string][]byte) {
	t.Helper()
	found := func(b []byte) string {
		for what, secret := range secrets {
			for _, form := range [][]byte{secret, []byte(base64.StdEncoding.EncodeToString(secret)),
				[]byte(base64.RawURLEncoding.EncodeToString(secret)), []byte(hex.EncodeToString(secret))} {
				if bytes.Contains(b, form) {
					return what
				}
			}
		}
		return ""
	}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if what := found(b); what != "" {
			t.Errorf("%s found in %s", what, path)
		}
		return nil
	})
	mustOK(t, err)
	if files == 0 {
		t.Fatal("no files scanned")
	}
	ro, err := ledger.Open(ctx, ledger.Config{Dir: dir, ReadOnly: true})
	mustOK(t, err)
	defer ro.Close()
	events := 0
	_, err = ro.Replay(ctx, 1, func(ev ledger.Event) error {
		events++
		b, err := json.Marshal(ev)
		if what := found(b); what != "" {
			t.Errorf("%s found in LEDGER seq %d (%s)", what, ev.Seq, ev.Type)
		}
		return err
	})
	mustOK(t, err)
	if events == 0 {
		t.Fatal("no events read")
	}
}

// post sends a raw body to /v1/kms/{enclave} with the root certificate
// (or none) and returns status and body.
func (s *stack) post(t *testing.T, enclave string, body []byte, withCert bool) (int, string) {
	t.Helper()
	cfg := &tls.Config{RootCAs: s.Roots}
	if withCert {
		signer, err := wire.ParseAPIKey(s.RootKey)
		mustOK(t, err)
		cert, err := wire.ClientCertificate(signer)
		mustOK(t, err)
		cfg.Certificates = []tls.Certificate{cert}
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post("https://"+s.addr+"/v1/kms/"+enclave, "application/octet-stream", bytes.NewReader(body))
	mustOK(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBadInput: every malformed request gets a clear 4xx, changes
// nothing, and the server keeps serving.
func TestBadInput(t *testing.T) {
	s := newStack(t)
	c := s.client("")
	mustOK(t, c.CreateEnclave(ctx, "e1"))
	mustOK(t, c.CreateKey(ctx, "e1", "k", "", false))
	frame := func(cmd wire.Command, m interface{ MarshalProto() []byte }) []byte {
		return wire.AppendFrame(nil, cmd, m.MarshalProto())
	}
	good := frame(wire.CmdKeyCreate, &wire.CreateKeyRequest{Name: "new"})
	tests := []struct {
		name     string
		body     []byte
		noCert   bool
		status   int
		contains string
	}{
		{"Empty", nil, false, 400, "malformed"},
		{"TruncatedHeader", good[:4], false, 400, "malformed"},
		{"LengthPastBody", good[:len(good)-1], false, 400, "malformed"},
		{"UnknownCommand", wire.AppendFrame(nil, 999, nil), false, 400, "unknown command 999"},
		{"Oversized", bytes.Repeat([]byte{0}, 2<<20), false, 413, "too large"},
		{"BadProto", wire.AppendFrame(nil, wire.CmdKeyCreate, []byte{0x0a, 0xff}), false, 400, "malformed"},
		{"InvalidKeyName", frame(wire.CmdKeyCreate, &wire.CreateKeyRequest{Name: "a.b"}), false, 400, "invalid name"},
		{"InvalidKeyNameWildcard", frame(wire.CmdKeyCreate, &wire.CreateKeyRequest{Name: "*"}), false, 400, "invalid name"},
		{"EmptyKeyName", frame(wire.CmdKeyCreate, &wire.CreateKeyRequest{Name: ""}), false, 400, "invalid name"},
		{"MixedReadWrite", append(frame(wire.CmdKeyStatus, &wire.KeyStatusRequest{Name: "k"}), good...), false, 400, "mixes"},
		{"NoClientCert", good, true, 403, "access denied"},
		{"ShortImport", frame(wire.CmdKeyImport, &wire.ImportKeyRequest{Name: "imp", Key: []byte("short")}), false, 400, "32 bytes"},
	}
	headBefore, err := s.Store.Head(ctx)
	mustOK(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := s.post(t, "e1", tt.body, !tt.noCert)
			if status != tt.status || !strings.Contains(body, tt.contains) {
				t.Fatalf("status %d body %q, want %d containing %q", status, body, tt.status, tt.contains)
			}
		})
	}
	if h, _ := s.Store.Head(ctx); h != headBefore {
		t.Fatalf("ledger head moved from %d to %d after bad requests", headBefore, h)
	}
	if status, body := s.post(t, "bad.enclave", good, true); status != 400 && status != 404 {
		t.Fatalf("bad enclave name: status %d body %q, want 400 or 404", status, body)
	}
	// Still serving.
	if _, err := c.GenerateKey(ctx, "e1", "k", 0, nil, 0); err != nil {
		t.Fatalf("GenerateKey after bad input err = %v", err)
	}
}

// TestEmptyEnclavePath: key commands on /v1/kms (an empty
// MINIO_KMS_ENCLAVE) act in the enclave "default"; enclave commands there
// are unaffected.
func TestEmptyEnclavePath(t *testing.T) {
	s := newStack(t)
	c := s.client("")
	if err := c.CreateKey(ctx, "", "k", "", false); !errors.Is(err, client.ErrEnclaveNotFound) {
		t.Fatalf("CreateKey on /v1/kms without a default enclave: err = %v, want ErrEnclaveNotFound", err)
	}
	mustOK(t, c.CreateEnclave(ctx, api.DefaultEnclave))
	mustOK(t, c.CreateKey(ctx, "", "k", "", false))
	g, err := c.GenerateKey(ctx, "", "k", 0, []byte("{}"), 0)
	mustOK(t, err)
	if _, err := c.Decrypt(ctx, api.DefaultEnclave, "k", 0, g.Ciphertext, []byte("{}")); err != nil {
		t.Fatalf("the key made through /v1/kms is not in enclave %q: %v", api.DefaultEnclave, err)
	}
	if r, err := c.ListEnclaves(ctx, "", "", 0); err != nil || len(r.Enclaves) != 1 {
		t.Fatalf("ListEnclaves = %+v, %v", r, err)
	}
}
