package keys_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/ledger/ledgertest"
	"github.com/kmsledger/kmsledger/projections"
	"github.com/kmsledger/kmsledger/projections/keys"
)

const root = "h1:root"

// node is a real ledger, projection, REK (software HSM) and command
// handler, with enclaves e and e2, and the Service over the projection.
type node struct {
	t     testing.TB
	store *ledger.Store
	proj  *projections.Projection
	rek   *hsm.REK
	h     *commands.Handler
	svc   *keys.Service
}

func newNode(t *testing.T) *node {
	t.Helper()
	return newNodeOn(t, ledgertest.Open(t), projections.Options{})
}

// newNodeOn is newNode on store, with a projection opened with o.
func newNodeOn(t testing.TB, store *ledger.Store, o projections.Options) *node {
	t.Helper()
	ctx := context.Background()
	proj, err := projections.OpenWith(ctx, store, nil, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proj.Close)
	s, err := softkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w, err := softkey.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	rek, _, err := commands.Unseal(ctx, store, proj, []commands.NamedHSM{{Name: "soft", Kind: "soft", W: w}},
		commands.InitParams{RootIdentity: root, DefaultType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, store: store, proj: proj, rek: rek, h: commands.NewHandler(store, proj, rek, nil), svc: keys.New(proj)}
	n.run(commands.CreateEnclave{Name: "e"})
	n.run(commands.CreateEnclave{Name: "e2"})
	return n
}

func (n *node) run(cmd commands.Command) {
	n.t.Helper()
	if _, err := n.h.Execute(context.Background(), root, "", cmd); err != nil {
		n.t.Fatalf("%T: %v", cmd, err)
	}
}

// id is a well-formed identity named after who.
func id(who string) string {
	d := sha256.Sum256([]byte(who))
	return "h1:" + base64.RawURLEncoding.EncodeToString(d[:])
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

// GenerateDataKey returns a data key of the length asked for (32 bytes
// for 0) whose ciphertext decrypts, under the version it names, with the
// same associated data only; the use is counted on that version.
func TestGenerateDataKeyAndDecrypt(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	n.run(commands.CreateKey{Enclave: "e", Name: "k"})
	n.run(commands.CreateKey{Enclave: "e", Name: "k", AddVersion: true})
	for _, tc := range []struct {
		length, want int
		version      uint32
	}{{0, 32, 0}, {64, 64, 0}, {1, 1, 1}, {1024, 1024, 2}} {
		ad := []byte("bucket/object")
		dk, err := n.svc.GenerateDataKey(ctx, "e", "k", tc.version, ad, tc.length)
		if err != nil {
			t.Fatalf("GenerateDataKey(length %d, v%d): %v", tc.length, tc.version, err)
		}
		wantVer := tc.version
		if wantVer == 0 {
			wantVer = 2
		}
		if len(dk.Plaintext) != tc.want || dk.Version != wantVer {
			t.Fatalf("GenerateDataKey(length %d, v%d) = %d bytes, v%d; want %d bytes, v%d", tc.length, tc.version, len(dk.Plaintext), dk.Version, tc.want, wantVer)
		}
		for _, v := range []uint32{0, wantVer} {
			pt, err := n.svc.Decrypt(ctx, "e", "k", v, dk.Ciphertext, ad)
			if err != nil || !bytes.Equal(pt, dk.Plaintext) {
				t.Fatalf("Decrypt(v%d) = %x, %v; want the data key", v, pt, err)
			}
		}
		_, err = n.svc.Decrypt(ctx, "e", "k", 3-wantVer, dk.Ciphertext, ad)
		wantErr(t, "Decrypt naming another version", err, hsm.ErrDecrypt)
		_, err = n.svc.Decrypt(ctx, "e", "k", 0, dk.Ciphertext, []byte("other/object"))
		wantErr(t, "Decrypt with other associated data", err, hsm.ErrDecrypt)
	}
	_, v1, err := n.svc.Key(ctx, "e", "k", 1)
	if err != nil {
		t.Fatal(err)
	}
	if u := v1.Usage(); u.Encryptions != 1 || u.Decryptions != 2 {
		t.Errorf("usage of v1 = %+v, want 1 encryption, 2 decryptions", u)
	}
	if v1.LastUsed.Load() == 0 {
		t.Error("v1 has no last use")
	}
}

// Hostile inputs: lengths out of range, tampered, truncated and foreign
// ciphertexts, another enclave's key of the same name. Each fails with
// the error the API maps, and nothing is counted.
func TestCryptoRejectsBadInput(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	n.run(commands.CreateKey{Enclave: "e", Name: "k"})
	n.run(commands.CreateKey{Enclave: "e2", Name: "k"})
	for _, l := range []int{-1, 1025, 1 << 20} {
		_, err := n.svc.GenerateDataKey(ctx, "e", "k", 0, nil, l)
		wantErr(t, fmt.Sprintf("GenerateDataKey(length %d)", l), err, hsm.ErrInvalidLength)
	}
	v, ct, err := n.svc.Encrypt(ctx, "e", "k", 0, []byte("secret"), []byte("ad"))
	if err != nil || v != 1 {
		t.Fatalf("Encrypt = v%d, %v", v, err)
	}
	tampered := bytes.Clone(ct)
	tampered[len(tampered)-1] ^= 1
	for name, c := range map[string][]byte{
		"tampered": tampered, "truncated": ct[:len(ct)-1], "header only": ct[:6], "empty": nil,
		"random": bytes.Repeat([]byte{0x5a}, 80),
	} {
		_, err := n.svc.Decrypt(ctx, "e", "k", 0, c, []byte("ad"))
		wantErr(t, "Decrypt("+name+")", err, hsm.ErrDecrypt)
	}
	_, err = n.svc.Decrypt(ctx, "e2", "k", 0, ct, []byte("ad"))
	wantErr(t, "Decrypt with the other enclave's key", err, hsm.ErrDecrypt)
	_, err = n.svc.Decrypt(ctx, "e", "k", 7, ct, []byte("ad"))
	wantErr(t, "Decrypt naming version 7 of a v1 ciphertext", err, hsm.ErrDecrypt)
	_, v1, _ := n.svc.Key(ctx, "e", "k", 1)
	if u := v1.Usage(); u.Decryptions != 0 {
		t.Errorf("failed decryptions counted: %+v", u)
	}
}

// Lookups of what does not exist fail with the sentinels the error tables
// map, for every operation.
func TestNotFound(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	n.run(commands.CreateKey{Enclave: "e", Name: "k"})
	ct, err := func() ([]byte, error) { _, c, err := n.svc.Encrypt(ctx, "e", "k", 0, []byte("x"), nil); return c, err }()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		enclave, name string
		version       uint32
		want          error
	}{
		{"nope", "k", 0, projections.ErrEnclaveNotFound},
		{"e", "nope", 0, projections.ErrKeyNotFound},
		{"e", "k", 9, projections.ErrKeyNotFound},
	} {
		what := fmt.Sprintf("%s/%s v%d", tc.enclave, tc.name, tc.version)
		_, err := n.svc.GenerateDataKey(ctx, tc.enclave, tc.name, tc.version, nil, 0)
		wantErr(t, "GenerateDataKey "+what, err, tc.want)
		_, _, err = n.svc.Encrypt(ctx, tc.enclave, tc.name, tc.version, []byte("x"), nil)
		wantErr(t, "Encrypt "+what, err, tc.want)
		_, _, err = n.svc.MAC(ctx, tc.enclave, tc.name, tc.version, []byte("x"))
		wantErr(t, "MAC "+what, err, tc.want)
		_, err = n.svc.KeyStatus(ctx, tc.enclave, tc.name, tc.version)
		wantErr(t, "KeyStatus "+what, err, tc.want)
		if tc.version == 0 {
			_, err = n.svc.Decrypt(ctx, tc.enclave, tc.name, 0, []byte("not ours"), nil)
			wantErr(t, "Decrypt (legacy) "+what, err, tc.want)
			_, err = n.svc.Decrypt(ctx, tc.enclave, tc.name, 0, ct, nil)
			wantErr(t, "Decrypt "+what, err, tc.want)
		}
	}
	_, err = n.svc.EnclaveStatus(ctx, "nope")
	wantErr(t, "EnclaveStatus", err, commands.ErrEnclaveNotFound)
	_, err = n.svc.Policy(ctx, "e", "nope")
	wantErr(t, "Policy", err, commands.ErrPolicyNotFound)
	_, err = n.svc.Identity(ctx, "e", id("nope"))
	wantErr(t, "Identity", err, commands.ErrIdentityNotFound)
	_, err = n.svc.Identity(ctx, "nope", id("nope"))
	wantErr(t, "Identity in no enclave", err, commands.ErrEnclaveNotFound)
	_, err = n.svc.KeyNames(ctx, "nope", "")
	wantErr(t, "KeyNames", err, commands.ErrEnclaveNotFound)
	_, _, err = n.svc.ListKeys(ctx, "nope", keys.Page{})
	wantErr(t, "ListKeys", err, commands.ErrEnclaveNotFound)
	err = n.svc.ReadKey(ctx, "e", "nope", func(*projections.Key) error { return nil })
	wantErr(t, "ReadKey", err, commands.ErrKeyNotFound)
	x, err := n.svc.Identity(ctx, "nope", root)
	if err != nil || !x.Root || x.Identity != root {
		t.Errorf("Identity(root) = %+v, %v; want root, whatever the enclave", x, err)
	}
}

// A key created through another projection of the same ledger a moment
// ago is found: lookups catch up with the ledger before "not found".
func TestLookupsCatchUp(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	other, err := projections.Open(ctx, n.store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	other.SetREK(n.rek)
	svc := keys.New(other)
	for i := range 20 {
		name := fmt.Sprintf("k%02d", i)
		n.run(commands.CreateKey{Enclave: "e", Name: name})
		if _, err := svc.KeyStatus(ctx, "e", name, 0); err != nil {
			t.Fatalf("KeyStatus(%s) right after its creation: %v", name, err)
		}
		pol := "p" + name
		n.run(commands.CreatePolicy{Enclave: "e", Name: pol, Allow: map[string][]string{"KEY:STATUS": {"*"}}})
		if _, err := svc.Policy(ctx, "e", pol); err != nil {
			t.Fatalf("Policy(%s) right after its creation: %v", pol, err)
		}
	}
}

// A disabled key, or one pending deletion, refuses crypto but answers
// its status; enabled again, it works.
func TestDisabledKeyRefusesCrypto(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	n.run(commands.CreateKey{Enclave: "e", Name: "k"})
	_, ct, err := n.svc.Encrypt(ctx, "e", "k", 0, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	n.run(commands.DisableKey{Enclave: "e", Name: "k"})
	_, err = n.svc.Decrypt(ctx, "e", "k", 0, ct, nil)
	wantErr(t, "Decrypt of a disabled key", err, projections.ErrKeyDisabled)
	_, err = n.svc.GenerateDataKey(ctx, "e", "k", 0, nil, 0)
	wantErr(t, "GenerateDataKey of a disabled key", err, projections.ErrKeyDisabled)
	_, _, err = n.svc.MAC(ctx, "e", "k", 0, nil)
	wantErr(t, "MAC of a disabled key", err, projections.ErrKeyDisabled)
	if st, err := n.svc.KeyStatus(ctx, "e", "k", 0); err != nil || st.Version != 1 || st.Type != "AES256" {
		t.Errorf("KeyStatus of a disabled key = %+v, %v", st, err)
	}
	n.run(commands.EnableKey{Enclave: "e", Name: "k"})
	if pt, err := n.svc.Decrypt(ctx, "e", "k", 0, ct, nil); err != nil || string(pt) != "x" {
		t.Errorf("Decrypt after enable = %q, %v", pt, err)
	}
}

// The ciphertext of a destroyed version of a live key fails as an
// invalid ciphertext (it can never decrypt again), not as a missing key;
// once the whole key is gone it is a missing key.
func TestDestroyedVersion(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	n.run(commands.CreateKey{Enclave: "e", Name: "k"})
	_, ct, err := n.svc.Encrypt(ctx, "e", "k", 1, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	n.run(commands.CreateKey{Enclave: "e", Name: "k", AddVersion: true})
	n.run(commands.DeleteKey{Enclave: "e", Name: "k", Version: 1})
	_, err = n.svc.Decrypt(ctx, "e", "k", 0, ct, nil)
	wantErr(t, "Decrypt under a destroyed version", err, hsm.ErrDecrypt)
	n.run(commands.DeleteKey{Enclave: "e", Name: "k", All: true})
	_, err = n.svc.Decrypt(ctx, "e", "k", 0, ct, nil)
	wantErr(t, "Decrypt under a destroyed key", err, projections.ErrKeyNotFound)
}

// legacyAES seals pt in the header-less format of MinIO's built-in KMS and
// KES ≥ v0.24 for AES256 (hsm/legacy.go): AES-256-GCM under
// HMAC-SHA256(key, IV), laid out as sealed ‖ IV ‖ nonce.
func legacyAES(t *testing.T, key, pt, ad []byte) []byte {
	t.Helper()
	iv, nonce := make([]byte, 16), make([]byte, 12)
	rand.Read(iv)
	rand.Read(nonce)
	m := hmac.New(sha256.New, key)
	m.Write(iv)
	b, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	out := g.Seal(nil, nonce, pt, ad)
	return append(append(out, iv...), nonce...)
}

// A ciphertext of an imported key's earlier life (no kmsledger header) is
// tried with the version asked for, or with every version newest first;
// it counts as an old-format decryption of the version that opened it.
func TestLegacyTrialDecryption(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	material := make([]byte, 32)
	rand.Read(material)
	n.run(commands.ImportKey{Enclave: "e", Name: "k", Type: "AES256", Material: bytes.Clone(material)})
	n.run(commands.CreateKey{Enclave: "e", Name: "k", AddVersion: true})
	ad := []byte("context")
	ct := legacyAES(t, material, []byte("old data key"), ad)
	for _, v := range []uint32{0, 1} {
		pt, err := n.svc.Decrypt(ctx, "e", "k", v, ct, ad)
		if err != nil || string(pt) != "old data key" {
			t.Fatalf("Decrypt(legacy, v%d) = %q, %v", v, pt, err)
		}
	}
	_, err := n.svc.Decrypt(ctx, "e", "k", 2, ct, ad)
	wantErr(t, "Decrypt(legacy, v2)", err, hsm.ErrDecrypt)
	_, err = n.svc.Decrypt(ctx, "e", "k", 0, ct, []byte("other"))
	wantErr(t, "Decrypt(legacy, other context)", err, hsm.ErrDecrypt)
	_, err = n.svc.Decrypt(ctx, "e", "k", 0, ct[:20], ad)
	wantErr(t, "Decrypt(legacy, truncated)", err, hsm.ErrDecrypt)
	_, v1, _ := n.svc.Key(ctx, "e", "k", 1)
	if u := v1.Usage(); u.Decryptions != 2 || u.OldFormatDecryptions != 2 {
		t.Errorf("usage of v1 = %+v, want 2 old-format decryptions", u)
	}
	// Rewrap moves the old ciphertext to the latest version.
	v, out, err := n.svc.Rewrap(ctx, "e", "k", ct, ad)
	if err != nil || v != 2 {
		t.Fatalf("Rewrap = v%d, %v", v, err)
	}
	if got, ok := hsm.CiphertextVersion(out); !ok || got != 2 {
		t.Errorf("rewrapped ciphertext names v%d (%v), want v2", got, ok)
	}
	if pt, err := n.svc.Decrypt(ctx, "e", "k", 0, out, ad); err != nil || string(pt) != "old data key" {
		t.Errorf("Decrypt(rewrapped) = %q, %v", pt, err)
	}
	_, _, err = n.svc.Rewrap(ctx, "e", "k", out, []byte("other"))
	wantErr(t, "Rewrap with other associated data", err, hsm.ErrDecrypt)
}

// MAC is deterministic per version and differs between versions.
func TestMAC(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	n.run(commands.CreateKey{Enclave: "e", Name: "k"})
	n.run(commands.CreateKey{Enclave: "e", Name: "k", AddVersion: true})
	v, m1, err := n.svc.MAC(ctx, "e", "k", 1, []byte("msg"))
	if err != nil || v != 1 || len(m1) != 32 {
		t.Fatalf("MAC(v1) = v%d, %d bytes, %v", v, len(m1), err)
	}
	_, again, _ := n.svc.MAC(ctx, "e", "k", 1, []byte("msg"))
	v, latest, _ := n.svc.MAC(ctx, "e", "k", 0, []byte("msg"))
	if !bytes.Equal(m1, again) || v != 2 || bytes.Equal(m1, latest) {
		t.Errorf("MAC: v1 twice equal %v, latest is v%d and differs %v", bytes.Equal(m1, again), v, !bytes.Equal(m1, latest))
	}
}

// Status reads and list pages describe what the ledger holds.
func TestStatusAndLists(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	for _, k := range []string{"b", "a1", "a2", "a3", "c"} {
		n.run(commands.CreateKey{Enclave: "e", Name: k})
	}
	n.run(commands.CreatePolicy{Enclave: "e", Name: "p", Allow: map[string][]string{"KEY:DECRYPT": {"a*"}}})
	admin, user := id("admin"), id("user")
	if admin > user {
		admin, user = user, admin
	}
	n.run(commands.CreateIdentity{Enclave: "e", Identity: admin, Privilege: ledger.PrivilegeAdmin})
	n.run(commands.CreateIdentity{Enclave: "e", Identity: user, Privilege: ledger.PrivilegeUser})
	n.run(commands.AssignPolicy{Enclave: "e", Identity: user, Policy: "p"})

	ks, next, err := n.svc.ListKeys(ctx, "e", keys.Page{Prefix: "a", Limit: 2})
	if err != nil || len(ks) != 2 || ks[0].Name != "a1" || ks[1].Name != "a2" || next != "a3" || ks[0].Version != 1 {
		t.Fatalf("ListKeys(a, 2) = %+v, %q, %v", ks, next, err)
	}
	ks, next, _ = n.svc.ListKeys(ctx, "e", keys.Page{Prefix: "a", ContinueAt: next, Limit: 2})
	if len(ks) != 1 || ks[0].Name != "a3" || next != "" {
		t.Fatalf("ListKeys(a, from a3) = %+v, %q", ks, next)
	}
	names, err := n.svc.KeyNames(ctx, "e", "a")
	if err != nil || fmt.Sprint(names) != "[a1 a2 a3]" {
		t.Errorf("KeyNames(a) = %v, %v", names, err)
	}
	if names, err := n.svc.KeyNames(ctx, "e", "zzz"); err != nil || names == nil || len(names) != 0 {
		t.Errorf("KeyNames(zzz) = %#v, %v; want an empty, non-nil list", names, err)
	}
	es, _, err := n.svc.ListEnclaves(ctx, keys.Page{})
	if err != nil || len(es) != 2 || es[0].Name != "e" || es[0].CreatedBy != root {
		t.Errorf("ListEnclaves = %+v, %v", es, err)
	}
	p, err := n.svc.Policy(ctx, "e", "p")
	if err != nil || fmt.Sprint(p.Allow) != "map[KEY:DECRYPT:[a*]]" {
		t.Errorf("Policy = %+v, %v", p, err)
	}
	ps, _, _ := n.svc.ListPolicies(ctx, "e", keys.Page{})
	if len(ps) != 1 || ps[0].Name != "p" || ps[0].Allow != nil {
		t.Errorf("ListPolicies = %+v", ps)
	}
	x, err := n.svc.Identity(ctx, "e", user)
	if err != nil || x.Root || x.Privilege != ledger.PrivilegeUser || x.Policy != "p" {
		t.Errorf("Identity(user) = %+v, %v", x, err)
	}
	xs, _, _ := n.svc.ListIdentities(ctx, "e", keys.Page{})
	if len(xs) != 2 || xs[0].Identity != admin || xs[0].Privilege != ledger.PrivilegeAdmin {
		t.Errorf("ListIdentities = %+v", xs)
	}
	if _, _, err := n.svc.ListKeys(ctx, "e2", keys.Page{}); err != nil {
		t.Errorf("ListKeys of an empty enclave: %v", err)
	}
}
