package interop

import (
	"bytes"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"aead.dev/mtls"
	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kms"
	"github.com/minio/kms-go/kms/cmds"
)

// TestAuthorization covers privileges and policy evaluation as seen by
// non-root callers.
func TestAuthorization(t *testing.T) {
	g := newGroup(t, "authorization")
	encA, encB := newEnclave(t, "authz-a"), newEnclave(t, "authz-b")
	for _, name := range []string{"minio-a", "minio-secret", "other"} {
		mustCreateKey(t, encA, name, kms.AES256)
	}
	mustCreateKey(t, encB, "minio-a", kms.AES256)

	policy := &kms.CreatePolicyRequest{
		Name: "minio",
		Allow: map[cmds.Command]kms.RuleSet{
			cmds.KeyGenerate: {"minio-*": {}},
			cmds.KeyDecrypt:  {"minio-*": {}},
		},
		Deny: map[cmds.Command]kms.RuleSet{
			cmds.KeyGenerate: {"minio-secret": {}},
		},
	}
	if err := env.Root.CreatePolicy(ctx(t), encA, policy); err != nil {
		t.Fatalf("CreatePolicy: %v", err)
	}
	userKey, bareKey, adminKey := newKey(t), newKey(t), newKey(t)
	for _, id := range []struct {
		key  mtls.PrivateKey
		priv kms.Privilege
	}{{userKey, kms.User}, {bareKey, kms.User}, {adminKey, kms.Admin}} {
		if err := env.Root.CreateIdentity(ctx(t), encA, &kms.CreateIdentityRequest{Identity: id.key.Identity(), Privilege: id.priv}); err != nil {
			t.Fatalf("CreateIdentity: %v", err)
		}
	}
	if err := env.Root.AssignPolicy(ctx(t), encA, &kms.AssignPolicyRequest{Identity: userKey.Identity(), Policy: "minio"}); err != nil {
		t.Fatalf("AssignPolicy: %v", err)
	}
	user, bare, admin := clientFor(t, userKey), clientFor(t, bareKey), clientFor(t, adminKey)
	stranger := clientFor(t, newKey(t))
	ad := []byte(`{"bucket":"bucket/object"}`)

	g.run("User may GenerateKey and Decrypt on minio-a", func(t *testing.T) {
		gen, err := user.GenerateKey(ctx(t), encA, &kms.GenerateKeyRequest{Name: "minio-a", AssociatedData: ad})
		noErr(t, "GenerateKey", err)
		if len(gen[0].Plaintext) != 32 {
			t.Fatalf("data key is %d bytes, want 32", len(gen[0].Plaintext))
		}
		dec, err := user.Decrypt(ctx(t), encA, &kms.DecryptRequest{Name: "minio-a", Ciphertext: gen[0].Ciphertext, AssociatedData: ad})
		noErr(t, "Decrypt", err)
		if !bytes.Equal(dec[0].Plaintext, gen[0].Plaintext) {
			t.Fatal("Decrypt returned a different data key")
		}
	})
	otherCT := mustGenerate(t, encA, "other", ad)
	for _, tc := range []struct {
		name string
		call func(t *testing.T) error
	}{
		{"User GenerateKey on other", func(t *testing.T) error {
			_, err := user.GenerateKey(ctx(t), encA, &kms.GenerateKeyRequest{Name: "other", AssociatedData: ad})
			return err
		}},
		{"User Decrypt on other", func(t *testing.T) error {
			_, err := user.Decrypt(ctx(t), encA, &kms.DecryptRequest{Name: "other", Ciphertext: otherCT, AssociatedData: ad})
			return err
		}},
		{"User GenerateKey on denied minio-secret", func(t *testing.T) error {
			_, err := user.GenerateKey(ctx(t), encA, &kms.GenerateKeyRequest{Name: "minio-secret", AssociatedData: ad})
			return err
		}},
		{"User CreateKey minio-b", func(t *testing.T) error {
			return user.CreateKey(ctx(t), encA, &kms.CreateKeyRequest{Name: "minio-b"})
		}},
		{"User KeyStatus minio-a", func(t *testing.T) error {
			_, err := user.KeyStatus(ctx(t), encA, &kms.KeyStatusRequest{Name: "minio-a"})
			return err
		}},
		{"User CreatePolicy", func(t *testing.T) error {
			return user.CreatePolicy(ctx(t), encA, &kms.CreatePolicyRequest{Name: "evil", Allow: map[cmds.Command]kms.RuleSet{cmds.KeyCreate: {"*": {}}}})
		}},
		{"User GenerateKey in enclave B", func(t *testing.T) error {
			_, err := user.GenerateKey(ctx(t), encB, &kms.GenerateKeyRequest{Name: "minio-a", AssociatedData: ad})
			return err
		}},
		{"User without policy GenerateKey on minio-a", func(t *testing.T) error {
			_, err := bare.GenerateKey(ctx(t), encA, &kms.GenerateKeyRequest{Name: "minio-a", AssociatedData: ad})
			return err
		}},
		{"Admin of A CreateKey in B", func(t *testing.T) error {
			return admin.CreateKey(ctx(t), encB, &kms.CreateKeyRequest{Name: "admin-key"})
		}},
		{"Admin of A GenerateKey in B", func(t *testing.T) error {
			_, err := admin.GenerateKey(ctx(t), encB, &kms.GenerateKeyRequest{Name: "minio-a", AssociatedData: ad})
			return err
		}},
		{"Admin of A CreateEnclave", func(t *testing.T) error {
			return admin.CreateEnclave(ctx(t), &kms.CreateEnclaveRequest{Name: harness.UniqueName("admin-made")})
		}},
		{"Admin of A ListEnclaves", func(t *testing.T) error {
			_, err := admin.ListEnclaves(ctx(t), &kms.ListRequest{})
			return err
		}},
		{"unknown identity GenerateKey", func(t *testing.T) error {
			_, err := stranger.GenerateKey(ctx(t), encA, &kms.GenerateKeyRequest{Name: "minio-a", AssociatedData: ad})
			return err
		}},
		{"unknown identity ListKeys", func(t *testing.T) error {
			_, err := stranger.ListKeys(ctx(t), &kms.ListRequest{Enclave: encA})
			return err
		}},
		{"unknown identity CreateEnclave", func(t *testing.T) error {
			return stranger.CreateEnclave(ctx(t), &kms.CreateEnclaveRequest{Name: harness.UniqueName("stranger-made")})
		}},
	} {
		g.run(tc.name+" is ErrPermission", func(t *testing.T) {
			wantErr(t, tc.call(t), kms.ErrPermission)
		})
	}
	g.run("Admin of A may manage keys, policies and identities in A", func(t *testing.T) {
		noErr(t, "CreateKey", admin.CreateKey(ctx(t), encA, &kms.CreateKeyRequest{Name: "admin-key"}))
		_, err := admin.GenerateKey(ctx(t), encA, &kms.GenerateKeyRequest{Name: "admin-key", AssociatedData: ad})
		noErr(t, "GenerateKey", err)
		_, err = admin.ListKeys(ctx(t), &kms.ListRequest{Enclave: encA})
		noErr(t, "ListKeys", err)
		noErr(t, "CreatePolicy", admin.CreatePolicy(ctx(t), encA, &kms.CreatePolicyRequest{Name: "admin-policy", Allow: map[cmds.Command]kms.RuleSet{cmds.KeyList: {"*": {}}}}))
		noErr(t, "CreateIdentity", admin.CreateIdentity(ctx(t), encA, &kms.CreateIdentityRequest{Identity: newKey(t).Identity(), Privilege: kms.User}))
	})
	g.run("ECDSA P-256 (k2) admin identity is accepted", func(t *testing.T) {
		k, err := mtls.GenerateKeyECDSA(elliptic.P256(), rand.Reader)
		noErr(t, "GenerateKeyECDSA", err)
		noErr(t, "CreateIdentity", env.Root.CreateIdentity(ctx(t), encA, &kms.CreateIdentityRequest{Identity: k.Identity(), Privilege: kms.Admin}))
		_, err = clientFor(t, k).KeyStatus(ctx(t), encA, &kms.KeyStatusRequest{Name: "minio-a"})
		noErr(t, "KeyStatus as ECDSA admin", err)
	})
	g.run("deleted identity loses access", func(t *testing.T) {
		k := newKey(t)
		noErr(t, "CreateIdentity", env.Root.CreateIdentity(ctx(t), encA, &kms.CreateIdentityRequest{Identity: k.Identity(), Privilege: kms.Admin}))
		c := clientFor(t, k)
		_, err := c.KeyStatus(ctx(t), encA, &kms.KeyStatusRequest{Name: "minio-a"})
		noErr(t, "KeyStatus before delete", err)
		noErr(t, "DeleteIdentity", env.Root.DeleteIdentity(ctx(t), encA, &kms.DeleteIdentityRequest{Identity: k.Identity()}))
		_, err = c.KeyStatus(ctx(t), encA, &kms.KeyStatusRequest{Name: "minio-a"})
		wantErr(t, err, kms.ErrPermission)
	})
}

// mustGenerate returns the ciphertext of a fresh data key generated as root.
func mustGenerate(t *testing.T, enc, key string, ad []byte) []byte {
	t.Helper()
	gen, err := env.Root.GenerateKey(ctx(t), enc, &kms.GenerateKeyRequest{Name: key, AssociatedData: ad})
	if err != nil {
		t.Fatalf("GenerateKey(%s): %v", key, err)
	}
	return gen[0].Ciphertext
}
