package kesinterop

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kes"
	"github.com/minio/kms-go/kms"
	"github.com/minio/kms-go/kms/cmds"
)

// minioContext encodes a context as MinIO does: compact JSON
// with sorted keys.
func minioContext(t *testing.T, kv map[string]string) []byte {
	t.Helper()
	b, err := json.Marshal(kv)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

// TestMinIOStartup is MinIO's start-up with a KES default key that does not
// exist yet: generate with "{}" → ErrKeyNotFound → create → generate, then
// describe as the keep-alive does.
func TestMinIOStartup(t *testing.T) {
	c, id := adminClient(t)
	name := harness.UniqueName("minio-default-key")
	_, err := c.GenerateKey(ctx(t), name, []byte("{}"))
	wantErr(t, "GenerateKey before CreateKey", err, kes.ErrKeyNotFound)
	noErr(t, "CreateKey", c.CreateKey(ctx(t), name))
	dek, err := c.GenerateKey(ctx(t), name, []byte("{}"))
	noErr(t, "GenerateKey", err)
	if len(dek.Plaintext) != 32 || len(dek.Ciphertext) == 0 {
		t.Fatalf("DEK = %d-byte plaintext, %d-byte ciphertext", len(dek.Plaintext), len(dek.Ciphertext))
	}
	pt, err := c.Decrypt(ctx(t), name, dek.Ciphertext, []byte("{}"))
	noErr(t, "Decrypt", err)
	if !bytes.Equal(pt, dek.Plaintext) {
		t.Fatal("Decrypt(GenerateKey) != plaintext")
	}
	wantErr(t, "CreateKey twice", c.CreateKey(ctx(t), name), kes.ErrKeyExists)
	info, err := c.DescribeKey(ctx(t), name)
	noErr(t, "DescribeKey", err)
	if info.Name != name || info.Algorithm != kes.AES256 || info.CreatedBy != id || time.Since(info.CreatedAt) > time.Hour {
		t.Fatalf("DescribeKey = %+v, want %s AES256 created by %s just now", info, name, id)
	}
}

// TestSSEContexts generates and decrypts data keys with the contexts MinIO
// uses for SSE-S3, SSE-KMS, its config and the key-status check.
func TestSSEContexts(t *testing.T) {
	c, _ := adminClient(t)
	name := harness.UniqueName("sse")
	noErr(t, "CreateKey", c.CreateKey(ctx(t), name))
	for _, kv := range []map[string]string{
		{"bucket": "bucket/object"},
		{"my-bucket": "my-bucket/dir/obj.txt", "tenant": "a&b <c>"},
		{".minio.sys": ".minio.sys/config/iam/format.json"},
		{"MinIO admin API": "KMSKeyStatusHandler"},
	} {
		context := minioContext(t, kv)
		dek, err := c.GenerateKey(ctx(t), name, context)
		noErr(t, "GenerateKey", err)
		pt, err := c.Decrypt(ctx(t), name, dek.Ciphertext, context)
		noErr(t, "Decrypt", err)
		if !bytes.Equal(pt, dek.Plaintext) {
			t.Fatalf("Decrypt with context %s != plaintext", context)
		}
		_, err = c.Decrypt(ctx(t), name, dek.Ciphertext, minioContext(t, map[string]string{"bucket": "bucket/other"}))
		wantErr(t, "Decrypt with another context", err, kes.ErrDecrypt)
	}
	ct, err := c.Encrypt(ctx(t), name, []byte("config"), []byte("ctx"))
	noErr(t, "Encrypt", err)
	pt, err := c.Decrypt(ctx(t), name, ct, []byte("ctx"))
	noErr(t, "Decrypt(Encrypt)", err)
	if string(pt) != "config" {
		t.Fatalf("Decrypt(Encrypt(config)) = %q", pt)
	}
	_, err = c.Decrypt(ctx(t), harness.UniqueName("missing"), ct, nil)
	wantErr(t, "Decrypt with a missing key", err, kes.ErrKeyNotFound)
}

// TestHMAC derives MinIO's root credentials the way MinIO does when root
// access is disabled: HMAC of fixed messages under the default key.
func TestHMAC(t *testing.T) {
	c, _ := adminClient(t)
	name := harness.UniqueName("hmac")
	noErr(t, "CreateKey", c.CreateKey(ctx(t), name))
	a1, err := c.HMAC(ctx(t), name, []byte("root access key"))
	noErr(t, "HMAC", err)
	a2, err := c.HMAC(ctx(t), name, []byte("root access key"))
	noErr(t, "HMAC again", err)
	s, err := c.HMAC(ctx(t), name, []byte("root secret key"))
	noErr(t, "HMAC other message", err)
	if len(a1) != 32 || !bytes.Equal(a1, a2) || bytes.Equal(a1, s) {
		t.Fatalf("HMAC = %x, %x, %x: want 32 bytes, deterministic, message-dependent", a1, a2, s)
	}
	_, err = c.HMAC(ctx(t), harness.UniqueName("missing"), []byte("m"))
	wantErr(t, "HMAC with a missing key", err, kes.ErrKeyNotFound)
}

// TestKeyAdministration covers what `mc admin kms key` does: list, import,
// describe, delete.
func TestKeyAdministration(t *testing.T) {
	c, _ := adminClient(t)
	prefix := harness.UniqueName("adm")
	names := []string{prefix + "-b", prefix + "-a", prefix + "-c"}
	for _, n := range names {
		noErr(t, "CreateKey", c.CreateKey(ctx(t), n))
	}
	listed, next, err := c.ListKeys(ctx(t), prefix, -1)
	noErr(t, "ListKeys", err)
	slices.Sort(names)
	if !slices.Equal(listed, names) || next != "" {
		t.Fatalf("ListKeys(%s) = %v %q, want %v", prefix, listed, next, names)
	}
	all, _, err := c.ListKeys(ctx(t), "", -1)
	noErr(t, "ListKeys(all)", err)
	if !slices.IsSorted(all) || !slices.Contains(all, names[0]) {
		t.Fatalf("ListKeys(\"\") = %v: want sorted names including %s", all, names[0])
	}

	// Import a key and decrypt what KES made with it (raw format, vectors in testdata/kes/).
	key := make([]byte, 32)
	rand.Read(key)
	imported := prefix + "-imported"
	noErr(t, "ImportKey", c.ImportKey(ctx(t), imported, &kes.ImportKeyRequest{Key: key, Cipher: kes.AES256}))
	wantErr(t, "ImportKey twice", c.ImportKey(ctx(t), imported, &kes.ImportKeyRequest{Key: key, Cipher: kes.AES256}), kes.ErrKeyExists)
	context := minioContext(t, map[string]string{"bucket": "bucket/object"})
	want := make([]byte, 32)
	rand.Read(want)
	pt, err := c.Decrypt(ctx(t), imported, kesRawCiphertext(t, key, want, context), context)
	noErr(t, "Decrypt(KES raw ciphertext)", err)
	if !bytes.Equal(pt, want) {
		t.Fatal("Decrypt(KES raw ciphertext) != plaintext")
	}

	noErr(t, "DeleteKey", c.DeleteKey(ctx(t), names[0]))
	_, err = c.DescribeKey(ctx(t), names[0])
	wantErr(t, "DescribeKey after DeleteKey", err, kes.ErrKeyNotFound)
	wantErr(t, "DeleteKey twice", c.DeleteKey(ctx(t), names[0]), kes.ErrKeyNotFound)
}

// kesRawCiphertext encrypts like KES since 2024: AES-256-GCM under
// HMAC-SHA256(key, iv), sealed ‖ iv(16) ‖ nonce(12).
func kesRawCiphertext(t *testing.T, key, pt, context []byte) []byte {
	t.Helper()
	iv, nonce := make([]byte, 16), make([]byte, 12)
	rand.Read(iv)
	rand.Read(nonce)
	m := hmac.New(sha256.New, key)
	m.Write(iv)
	block, err := aes.NewCipher(m.Sum(nil))
	noErr(t, "aes", err)
	gcm, err := cipher.NewGCM(block)
	noErr(t, "gcm", err)
	return append(append(gcm.Seal(nil, nonce, pt, context), iv...), nonce...)
}

// TestPolicyUser checks a User whose policy allows MinIO's calls on minio-*
// keys only, and what it and an Admin see of policies and identities.
func TestPolicyUser(t *testing.T) {
	policy := harness.UniqueName("minio-policy")
	prefix := harness.UniqueName("minio")
	noErr(t, "CreatePolicy", env.Root.CreatePolicy(ctx(t), kesEnclave, &kms.CreatePolicyRequest{
		Name: policy,
		Allow: map[cmds.Command]kms.RuleSet{
			cmds.KeyCreate: {prefix + "*": {}}, cmds.KeyGenerate: {prefix + "*": {}},
			cmds.KeyDecrypt: {prefix + "*": {}}, cmds.KeyStatus: {"*": {}},
		},
		Deny: map[cmds.Command]kms.RuleSet{cmds.KeyDecrypt: {prefix + "-secret": {}}},
	}))
	user, userID := newAPIKeyClient(t)
	addIdentity(t, userID, kms.User, policy)
	admin, _ := adminClient(t)
	stranger, _ := newAPIKeyClient(t)

	noErr(t, "User CreateKey", user.CreateKey(ctx(t), prefix+"-a"))
	dek, err := user.GenerateKey(ctx(t), prefix+"-a", []byte("{}"))
	noErr(t, "User GenerateKey", err)
	_, err = user.Decrypt(ctx(t), prefix+"-a", dek.Ciphertext, []byte("{}"))
	noErr(t, "User Decrypt", err)
	_, err = user.DescribeKey(ctx(t), prefix+"-a")
	noErr(t, "User DescribeKey", err)
	noErr(t, "Admin CreateKey(secret)", admin.CreateKey(ctx(t), prefix+"-secret"))
	secret, err := admin.GenerateKey(ctx(t), prefix+"-secret", nil)
	noErr(t, "Admin GenerateKey(secret)", err)
	_, err = user.Decrypt(ctx(t), prefix+"-secret", secret.Ciphertext, nil)
	wantErr(t, "User Decrypt(denied key)", err, kes.ErrNotAllowed)
	_, err = user.GenerateKey(ctx(t), "other"+prefix, nil)
	wantErr(t, "User GenerateKey(other key)", err, kes.ErrNotAllowed)
	wantErr(t, "User DeleteKey", user.DeleteKey(ctx(t), prefix+"-a"), kes.ErrNotAllowed)
	_, err = user.GetPolicy(ctx(t), policy)
	wantErr(t, "User GetPolicy", err, kes.ErrNotAllowed)
	_, err = stranger.GenerateKey(ctx(t), prefix+"-a", nil)
	wantErr(t, "stranger GenerateKey", err, kes.ErrNotAllowed)
	_, _, err = stranger.DescribeSelf(ctx(t))
	wantErr(t, "stranger DescribeSelf", err, kes.ErrNotAllowed)

	info, rules, err := user.DescribeSelf(ctx(t))
	noErr(t, "User DescribeSelf", err)
	if info.Identity != userID || info.IsAdmin || info.Policy != policy {
		t.Fatalf("DescribeSelf = %+v, want %s, not admin, policy %s", info, userID, policy)
	}
	if _, ok := rules.Allow["/v1/key/generate/"+prefix+"*"]; !ok {
		t.Fatalf("DescribeSelf allow = %v, want /v1/key/generate/%s*", rules.Allow, prefix)
	}
	if _, ok := rules.Deny["/v1/key/decrypt/"+prefix+"-secret"]; !ok {
		t.Fatalf("DescribeSelf deny = %v", rules.Deny)
	}

	p, err := admin.GetPolicy(ctx(t), policy)
	noErr(t, "Admin GetPolicy", err)
	if _, ok := p.Allow["/v1/key/describe/*"]; !ok || len(p.Allow) != 4 || len(p.Deny) != 1 {
		t.Fatalf("GetPolicy = allow %v deny %v", p.Allow, p.Deny)
	}
	pi, err := admin.DescribePolicy(ctx(t), policy)
	noErr(t, "DescribePolicy", err)
	if pi.Name != policy || pi.CreatedAt.IsZero() {
		t.Fatalf("DescribePolicy = %+v", pi)
	}
	_, err = admin.DescribePolicy(ctx(t), harness.UniqueName("nope"))
	wantErr(t, "DescribePolicy(missing)", err, kes.ErrPolicyNotFound)
	policies, _, err := admin.ListPolicies(ctx(t), policy, -1)
	noErr(t, "ListPolicies", err)
	if !slices.Equal(policies, []string{policy}) {
		t.Fatalf("ListPolicies(%s) = %v", policy, policies)
	}
	ii, err := admin.DescribeIdentity(ctx(t), userID)
	noErr(t, "DescribeIdentity", err)
	if ii.IsAdmin || ii.Policy != policy || ii.CreatedAt.IsZero() {
		t.Fatalf("DescribeIdentity(user) = %+v", ii)
	}
	_, err = admin.DescribeIdentity(ctx(t), kes.Identity(strings.Repeat("0", 64)))
	wantErr(t, "DescribeIdentity(missing)", err, kes.ErrIdentityNotFound)
	ids, _, err := admin.ListIdentities(ctx(t), "", -1)
	noErr(t, "ListIdentities", err)
	if !slices.Contains(ids, userID) {
		t.Fatalf("ListIdentities = %v, want %s in it", ids, userID)
	}
}

// TestServerAPIs covers what MinIO's admin APIs read: version, readiness,
// status, API list and metrics.
func TestServerAPIs(t *testing.T) {
	c, _ := adminClient(t)
	v, err := c.Version(ctx(t))
	noErr(t, "Version", err)
	if v == "" {
		t.Fatal("Version is empty")
	}
	ready, err := c.IsReady(ctx(t))
	if !ready || err != nil {
		t.Fatalf("IsReady = %v, %v", ready, err)
	}
	st, err := c.Status(ctx(t))
	noErr(t, "Status", err)
	if st.OS == "" || st.Arch == "" || st.CPUs < 1 || st.UsableCPUs < 1 || st.HeapAlloc == 0 || !st.KeyStoreReachable {
		t.Fatalf("Status = %+v", st)
	}
	apis, err := c.APIs(ctx(t))
	noErr(t, "APIs", err)
	found := false
	for _, a := range apis {
		if a.Path == "/v1/key/generate" && a.Method == "PUT" && a.MaxBody == 1_000_000 && a.Timeout == 15*time.Second {
			found = true
		}
	}
	if !found {
		t.Fatalf("APIs = %+v, want PUT /v1/key/generate 1 MB 15 s", apis)
	}
	m, err := c.Metrics(ctx(t))
	noErr(t, "Metrics", err)
	if m.RequestOK < 4 || m.RequestActive < 1 || m.CPUs < 1 || m.HeapAlloc == 0 || len(m.LatencyHistogram) == 0 {
		t.Fatalf("Metrics = %+v", m)
	}
}

// TestClientCertificate authenticates with a certificate and key file, as
// MINIO_KMS_KES_CERT_FILE / MINIO_KMS_KES_KEY_FILE do, instead of an API
// key: the identity is the hash of the certificate's public key.
func TestClientCertificate(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	noErr(t, "GenerateKey", err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "minio"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	noErr(t, "CreateCertificate", err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	noErr(t, "MarshalPKCS8PrivateKey", err)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	noErr(t, "write cert", os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	noErr(t, "write key", os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	noErr(t, "LoadX509KeyPair", err)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	noErr(t, "ParseCertificate", err)
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	id := kes.Identity(hex.EncodeToString(sum[:]))

	c := clientWithCert(cert)
	name := harness.UniqueName("cert")
	wantErr(t, "CreateKey before the identity exists", c.CreateKey(ctx(t), name), kes.ErrNotAllowed)
	addIdentity(t, id, kms.Admin, "")
	noErr(t, "CreateKey", c.CreateKey(ctx(t), name))
	dek, err := c.GenerateKey(ctx(t), name, []byte("{}"))
	noErr(t, "GenerateKey", err)
	if _, err := c.Decrypt(ctx(t), name, dek.Ciphertext, []byte("{}")); err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	info, _, err := c.DescribeSelf(ctx(t))
	noErr(t, "DescribeSelf", err)
	if info.Identity != id || !info.IsAdmin {
		t.Fatalf("DescribeSelf = %+v, want admin %s", info, id)
	}
}
