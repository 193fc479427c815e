package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
)

func versionUsage(t *testing.T, c *client.Client, enclave, name string) map[uint32]wire.VersionInfo {
	t.Helper()
	info, err := c.KeyInfo(ctx, enclave, name)
	mustOK(t, err)
	out := map[uint32]wire.VersionInfo{}
	for _, v := range info.Versions {
		out[v.Version] = v
	}
	return out
}

// TestKeyInfoUsage: the admin key info counts each version's encryptions
// (GenerateKey, Encrypt, rewrap output) and successful decryptions
// (Decrypt, rewrap input) on this node; failed requests count nothing;
// every version names format 2 and its AEAD; new ciphertexts start with
// the format-2 header. Other enclaves' users cannot read the counts.
func TestKeyInfoUsage(t *testing.T) {
	s := newStack(t)
	c := s.client("")
	mustOK(t, c.CreateEnclave(ctx, "e1"))
	for _, typ := range []string{"AES256", "ChaCha20"} {
		t.Run(typ, func(t *testing.T) {
			name := "k-" + typ
			mustOK(t, c.CreateKey(ctx, "e1", name, typ, false))
			v := versionUsage(t, c, "e1", name)[1]
			wantAEAD := map[string]string{"AES256": "XAES-256-GCM", "ChaCha20": "XChaCha20-Poly1305"}[typ]
			if v.CiphertextFormat != 2 || v.CiphertextAEAD != wantAEAD || v.Usage != (wire.VersionUsage{}) {
				t.Fatalf("new version = format %d %q usage %+v, want 2 %q and zero counts", v.CiphertextFormat, v.CiphertextAEAD, v.Usage, wantAEAD)
			}
			ad := []byte(`{"b":"b/o"}`)
			g, err := c.GenerateKey(ctx, "e1", name, 0, ad, 0)
			mustOK(t, err)
			if !bytes.Equal(g.Ciphertext[:6], []byte{'K', 2, 0, 0, 0, 1}) || len(g.Ciphertext) != 6+24+32+16 {
				t.Fatalf("GenerateKey ciphertext header % x, %d bytes; want 4b 02 00 00 00 01, 78 bytes", g.Ciphertext[:6], len(g.Ciphertext))
			}
			_, err = c.GenerateKey(ctx, "e1", name, 0, ad, 64)
			mustOK(t, err)
			e, err := c.Encrypt(ctx, "e1", name, 0, []byte("hello"), nil)
			mustOK(t, err)
			for range 3 {
				_, err := c.Decrypt(ctx, "e1", name, 0, g.Ciphertext, ad)
				mustOK(t, err)
			}
			// Failures count nothing: wrong ad, flipped byte, garbage.
			bad := bytes.Clone(g.Ciphertext)
			bad[len(bad)-1] ^= 1
			for _, ct := range [][]byte{bad, g.Ciphertext[:40], []byte("not a ciphertext")} {
				if _, err := c.Decrypt(ctx, "e1", name, 0, ct, ad); err == nil {
					t.Fatal("Decrypt of a bad ciphertext err = nil")
				}
			}
			if _, err := c.Decrypt(ctx, "e1", name, 0, g.Ciphertext, []byte("other")); err == nil {
				t.Fatal("Decrypt with other ad err = nil")
			}
			want := wire.VersionUsage{Encryptions: 3, Decryptions: 3}
			if got := versionUsage(t, c, "e1", name)[1].Usage; got != want {
				t.Fatalf("usage = %+v, want %+v", got, want)
			}
			// Rotate; rewrap a v1 ciphertext: v1 decrypts, v2 encrypts.
			mustOK(t, c.CreateKey(ctx, "e1", name, typ, true))
			r, err := c.Rewrap(ctx, "e1", name, e.Ciphertext, nil)
			mustOK(t, err)
			if r.Version != 2 || r.Ciphertext[1] != 2 {
				t.Fatalf("Rewrap = v%d format %d, want v2 format 2", r.Version, r.Ciphertext[1])
			}
			vs := versionUsage(t, c, "e1", name)
			if got, want := vs[1].Usage, (wire.VersionUsage{Encryptions: 3, Decryptions: 4}); got != want {
				t.Errorf("v1 usage after rewrap = %+v, want %+v", got, want)
			}
			if got, want := vs[2].Usage, (wire.VersionUsage{Encryptions: 1}); got != want {
				t.Errorf("v2 usage after rewrap = %+v, want %+v", got, want)
			}
		})
	}

	// A user of another enclave, and a user of e1 without KEY:STATUS,
	// cannot read key info (and so no counts).
	mustOK(t, c.CreateEnclave(ctx, "e2"))
	otherKey, otherID := newIdentity(t)
	mustOK(t, c.CreateIdentity(ctx, "e2", &wire.CreateIdentityRequest{Identity: otherID, Privilege: "Admin"}))
	if _, err := s.client(otherKey).KeyInfo(ctx, "e1", "k-AES256"); err == nil {
		t.Error("admin of e2: KeyInfo(e1) err = nil, want denied")
	}
	narrowKey, narrowID := newIdentity(t)
	mustOK(t, c.CreatePolicy(ctx, "e1", &wire.CreatePolicyRequest{Name: "dec", Allow: map[string][]string{"KEY:DECRYPT": {"*"}}}))
	mustOK(t, c.CreateIdentity(ctx, "e1", &wire.CreateIdentityRequest{Identity: narrowID}))
	mustOK(t, c.AssignPolicy(ctx, "e1", narrowID, "dec"))
	if _, err := s.client(narrowKey).KeyInfo(ctx, "e1", "k-AES256"); !errors.Is(err, client.ErrPermission) {
		t.Errorf("decrypt-only user: KeyInfo err = %v, want access denied", err)
	}
}

// TestKeyInfoUsageOldFormat: decrypting a KES/MinIO raw ciphertext of an
// imported key counts as an old-format decryption.
func TestKeyInfoUsageOldFormat(t *testing.T) {
	raw, err := os.ReadFile("../hsm/testdata/kes-raw-vectors.json")
	mustOK(t, err)
	var vs []struct {
		KeyType       string `json:"key_type"`
		KeyHex        string `json:"key_hex"`
		ContextB64    string `json:"context_b64"`
		PlaintextHex  string `json:"plaintext_hex"`
		CiphertextHex string `json:"ciphertext_hex"`
	}
	mustOK(t, json.Unmarshal(raw, &vs))
	v := vs[0]
	key, _ := hex.DecodeString(v.KeyHex)
	ct, _ := hex.DecodeString(v.CiphertextHex)
	ad, _ := base64.StdEncoding.DecodeString(v.ContextB64)
	want, _ := hex.DecodeString(v.PlaintextHex)

	s := newStack(t)
	c := s.client("")
	mustOK(t, c.CreateEnclave(ctx, "e1"))
	mustOK(t, c.ImportKey(ctx, "e1", "kes", v.KeyType, key))
	d, err := c.Decrypt(ctx, "e1", "kes", 0, ct, ad)
	mustOK(t, err)
	if !bytes.Equal(d.Plaintext, want) {
		t.Fatalf("Decrypt(KES vector) = %x, want %x", d.Plaintext, want)
	}
	g, err := c.GenerateKey(ctx, "e1", "kes", 0, ad, 0)
	mustOK(t, err)
	_, err = c.Decrypt(ctx, "e1", "kes", 0, g.Ciphertext, ad)
	mustOK(t, err)
	if got, want := versionUsage(t, c, "e1", "kes")[1].Usage, (wire.VersionUsage{Encryptions: 1, Decryptions: 2, OldFormatDecryptions: 1}); got != want {
		t.Errorf("usage = %+v, want %+v", got, want)
	}
}
