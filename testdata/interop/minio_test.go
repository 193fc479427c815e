package interop

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/minio/kms-go/kms"
	"github.com/minio/kms-go/kms/cmds"
)

// TestMinIO replays the calls an unmodified MinIO server and `mc` make
// (spec §6), as a User identity with the policy MinIO needs.
func TestMinIO(t *testing.T) {
	g := newGroup(t, "minio")
	enc := newEnclave(t, "minio")
	const sseKey = "minio-default-key"

	policy := &kms.CreatePolicyRequest{
		Name: "minio-server",
		Allow: map[cmds.Command]kms.RuleSet{
			cmds.KeyGenerate: {"*": {}},
			cmds.KeyDecrypt:  {"*": {}},
			cmds.KeyCreate:   {"*": {}},
			cmds.KeyList:     {"*": {}},
		},
	}
	if err := env.Root.CreatePolicy(ctx(t), enc, policy); err != nil {
		t.Fatalf("CreatePolicy: %v", err)
	}
	minioKey := newKey(t)
	if err := env.Root.CreateIdentity(ctx(t), enc, &kms.CreateIdentityRequest{Identity: minioKey.Identity(), Privilege: kms.User}); err != nil {
		t.Fatalf("CreateIdentity: %v", err)
	}
	if err := env.Root.AssignPolicy(ctx(t), enc, &kms.AssignPolicyRequest{Identity: minioKey.Identity(), Policy: "minio-server"}); err != nil {
		t.Fatalf("AssignPolicy: %v", err)
	}
	minio := clientFor(t, minioKey)

	g.run("startup creates the missing default key", func(t *testing.T) {
		startup(t, minio, enc, sseKey, true)
	})
	g.run("second startup finds the default key", func(t *testing.T) {
		startup(t, minio, enc, sseKey, false)
	})
	g.run("startup against the --dev environment as root", func(t *testing.T) {
		_, err := env.Root.GenerateKey(ctx(t), env.Enclave, &kms.GenerateKeyRequest{Name: env.SSEKey, AssociatedData: []byte("{}"), Length: 32})
		if errors.Is(err, kms.ErrKeyNotFound) {
			err = env.Root.CreateKey(ctx(t), env.Enclave, &kms.CreateKeyRequest{Name: env.SSEKey})
			if errors.Is(err, kms.ErrKeyExists) {
				err = nil
			}
		}
		noErr(t, "startup", err)
		gen, err := env.Root.GenerateKey(ctx(t), env.Enclave, &kms.GenerateKeyRequest{Name: env.SSEKey, AssociatedData: []byte("{}"), Length: 32})
		noErr(t, "GenerateKey", err)
		if len(gen[0].Plaintext) != 32 {
			t.Fatalf("data key is %d bytes, want 32", len(gen[0].Plaintext))
		}
	})

	for _, tc := range []struct {
		name string
		ctx  map[string]string
	}{
		{"SSE-S3 object", map[string]string{"bucket": "bucket/object"}},
		{"IAM/config data", map[string]string{".minio.sys": ".minio.sys/config/iam/format.json"}},
		{"SSE-KMS user context", map[string]string{"project": "x<y>&z", "bucket": "bucket/dir/object"}},
		{"replication targets", map[string]string{"bucket": "bucket", "bucket-targets.json": "bucket-targets.json"}},
		{"readiness probe", map[string]string{"healthcheck": ""}},
		{"bucket encryption validation", map[string]string{"MinIO admin API": "ServerInfoHandler"}},
		{"mc admin kms key status", map[string]string{"MinIO admin API": "KMSKeyStatusHandler"}},
	} {
		g.run("GenerateKey then Decrypt Version 0: "+tc.name, func(t *testing.T) {
			ad := contextJSON(t, tc.ctx)
			gen, err := minio.GenerateKey(ctx(t), enc, &kms.GenerateKeyRequest{Name: sseKey, AssociatedData: ad, Length: 32})
			noErr(t, "GenerateKey", err)
			if len(gen[0].Plaintext) != 32 {
				t.Fatalf("data key is %d bytes, want 32", len(gen[0].Plaintext))
			}
			// MinIO stores only key name, ciphertext and context.
			dec, err := minio.Decrypt(ctx(t), enc, &kms.DecryptRequest{Name: sseKey, Ciphertext: gen[0].Ciphertext, AssociatedData: ad})
			noErr(t, "Decrypt", err)
			if !bytes.Equal(dec[0].Plaintext, gen[0].Plaintext) {
				t.Fatal("Decrypt returned a different data key")
			}
		})
	}
	g.run(`Decrypt with context {"bucket":"bucket/object"} rejects another object's context`, func(t *testing.T) {
		ad := []byte(`{"bucket":"bucket/object"}`)
		gen, err := minio.GenerateKey(ctx(t), enc, &kms.GenerateKeyRequest{Name: sseKey, AssociatedData: ad, Length: 32})
		noErr(t, "GenerateKey", err)
		_, err = minio.Decrypt(ctx(t), enc, &kms.DecryptRequest{Name: sseKey, Ciphertext: gen[0].Ciphertext, AssociatedData: []byte(`{"bucket":"bucket/object2"}`)})
		wantErr(t, err, kms.ErrDecrypt)
	})
	g.run("mc admin kms key create, then ErrKeyExists", func(t *testing.T) {
		noErr(t, "CreateKey", minio.CreateKey(ctx(t), enc, &kms.CreateKeyRequest{Name: "mc-created"}))
		wantErr(t, minio.CreateKey(ctx(t), enc, &kms.CreateKeyRequest{Name: "mc-created"}), kms.ErrKeyExists)
	})
	g.run("mc admin kms key list uses the first page only", func(t *testing.T) {
		page, err := minio.ListKeys(ctx(t), &kms.ListRequest{Enclave: enc})
		noErr(t, "ListKeys", err)
		names := make([]string, len(page.Items))
		for i, k := range page.Items {
			names[i] = k.Name
		}
		for _, want := range []string{sseKey, "mc-created"} {
			if !slices.Contains(names, want) {
				t.Errorf("key %q missing from first page %v", want, names)
			}
		}
	})
	g.run("KMS status: Version as MinIO's identity", func(t *testing.T) {
		resp, err := minio.Version(ctx(t), &kms.VersionRequest{})
		noErr(t, "Version", err)
		if len(resp) != 1 || resp[0].Host == "" {
			t.Fatalf("got %d responses, want 1 with a Host", len(resp))
		}
	})
}

// startup replays MinIO's start-up: GenerateKey{SSE_KEY, "{}"}; only on
// ErrKeyNotFound CreateKey{SSE_KEY}; then the data key must be 32 bytes.
func startup(t *testing.T, c *kms.Client, enc, sseKey string, wantCreate bool) {
	t.Helper()
	req := &kms.GenerateKeyRequest{Name: sseKey, AssociatedData: []byte("{}"), Length: 32}
	_, err := c.GenerateKey(ctx(t), enc, req)
	created := false
	if errors.Is(err, kms.ErrKeyNotFound) {
		err = c.CreateKey(ctx(t), enc, &kms.CreateKeyRequest{Name: sseKey})
		created = true
		if errors.Is(err, kms.ErrKeyExists) || errors.Is(err, kms.ErrPermission) {
			err = nil // MinIO tolerates both.
		}
	}
	noErr(t, "startup", err)
	if created != wantCreate {
		t.Fatalf("CreateKey called = %v, want %v", created, wantCreate)
	}
	gen, err := c.GenerateKey(ctx(t), enc, req)
	noErr(t, "GenerateKey after startup", err)
	if len(gen[0].Plaintext) != 32 {
		t.Fatalf("data key is %d bytes, want exactly 32", len(gen[0].Plaintext))
	}
}

// contextJSON encodes a MinIO kms.Context as MinIO does: sorted keys, no
// spaces, HTML-safe escaping.
func contextJSON(t *testing.T, m map[string]string) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
