package transitinterop

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kms"
	"github.com/minio/kms-go/kms/cmds"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// wantStatus fails unless err is an SDK error with the status and, if
// msg is not empty, a message containing msg.
func wantStatus(t *testing.T, err error, code int, msg string) {
	t.Helper()
	if status(err) != code {
		t.Fatalf("err = %v, want status %d", err, code)
	}
	if msg != "" && !slices.ContainsFunc(errorsOf(err), func(s string) bool { return strings.Contains(s, msg) }) {
		t.Fatalf("errors %q, want one containing %q", errorsOf(err), msg)
	}
}

func str(t *testing.T, r *result, field string) string {
	t.Helper()
	if r == nil {
		t.Fatalf("no result, want data.%s", field)
	}
	s, ok := r.Data[field].(string)
	if !ok {
		t.Fatalf("data.%s = %v, want a string", field, r.Data[field])
	}
	return s
}

func num(t *testing.T, r *result, field string) int64 {
	t.Helper()
	n, err := r.Data[field].(json.Number).Int64()
	if err != nil {
		t.Fatalf("data.%s = %v, want an integer", field, r.Data[field])
	}
	return n
}

// TestTransitEndpoints: every endpoint through both SDKs.
func TestTransitEndpoints(t *testing.T) {
	for _, c := range clients(t, rootToken()) {
		t.Run(c.name(), func(t *testing.T) {
			key := harness.UniqueName("k")
			initialized, sealed, err := c.health()
			if err != nil || !initialized || sealed {
				t.Fatalf("Sys().Health() = %v, %v, %v", initialized, sealed, err)
			}
			// A missing key reads as nil, nil (SeaweedFS's probe).
			if r, err := c.read("transit/keys/" + key); r != nil || err != nil {
				t.Fatalf("read missing key = %v, %v; want nil, nil", r, err)
			}
			r, err := c.write("transit/keys/"+key, map[string]any{"type": "aes256-gcm96"})
			if err != nil || num(t, r, "latest_version") != 1 {
				t.Fatalf("create = %v, %v", r, err)
			}
			r, err = c.list("transit/keys")
			if err != nil || r == nil || !slices.Contains(r.Data["keys"].([]any), any(key)) {
				t.Fatalf("list = %v, %v", r, err)
			}
			// Encrypt / decrypt with a context on a non-derived key.
			sw := b64(`{"aws:s3:arn":"arn:aws:s3:::bucket/object"}`)
			r, err = c.write("transit/encrypt/"+key, map[string]any{"plaintext": b64("data key"), "context": sw})
			if err != nil {
				t.Fatal(err)
			}
			ct := str(t, r, "ciphertext")
			r, err = c.write("transit/decrypt/"+key, map[string]any{"ciphertext": ct})
			if err != nil || str(t, r, "plaintext") != b64("data key") {
				t.Fatalf("decrypt = %v, %v", r, err)
			}
			// Associated data.
			r, err = c.write("transit/encrypt/"+key, map[string]any{"plaintext": b64("x"), "associated_data": b64("ad")})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.write("transit/decrypt/"+key, map[string]any{"ciphertext": str(t, r, "ciphertext")})
			wantStatus(t, err, 400, "cipher: message authentication failed")
			// Rotate, rewrap, config, datakey, hmac, verify, random, hash.
			if r, err = c.write("transit/keys/"+key+"/rotate", nil); err != nil || num(t, r, "latest_version") != 2 {
				t.Fatalf("rotate = %v, %v", r, err)
			}
			r, err = c.write("transit/rewrap/"+key, map[string]any{"ciphertext": ct})
			if err != nil || !strings.HasPrefix(str(t, r, "ciphertext"), "vault:v2:") {
				t.Fatalf("rewrap = %v, %v", r, err)
			}
			if r, err = c.read("transit/keys/" + key); err != nil || num(t, r, "latest_version") != 2 {
				t.Fatalf("read = %v, %v", r, err)
			}
			r, err = c.write("transit/datakey/plaintext/"+key, map[string]any{"bits": 256})
			if err != nil {
				t.Fatal(err)
			}
			d, err := c.write("transit/decrypt/"+key, map[string]any{"ciphertext": str(t, r, "ciphertext")})
			if err != nil || str(t, d, "plaintext") != str(t, r, "plaintext") {
				t.Fatalf("decrypt(datakey) = %v, %v", d, err)
			}
			r, err = c.write("transit/hmac/"+key+"/sha2-512", map[string]any{"input": b64("m")})
			if err != nil {
				t.Fatal(err)
			}
			v, err := c.write("transit/verify/"+key+"/sha2-512", map[string]any{"input": b64("m"), "hmac": str(t, r, "hmac")})
			if err != nil || v.Data["valid"] != true {
				t.Fatalf("verify = %v, %v", v, err)
			}
			if r, err = c.write("transit/random/24", nil); err != nil || len(str(t, r, "random_bytes")) != 32 {
				t.Fatalf("random = %v, %v", r, err)
			}
			if r, err = c.write("transit/hash", map[string]any{"input": b64("abc")}); err != nil ||
				str(t, r, "sum") != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
				t.Fatalf("hash = %v, %v", r, err)
			}
			if r, err = c.read("transit/config/keys"); err != nil || r.Data["disable_upsert"] != false {
				t.Fatalf("config/keys = %v, %v", r, err)
			}
			// Delete: refused, then allowed by config.
			wantStatus(t, c.delete("transit/keys/"+key), 400, "deletion is not allowed")
			if _, err = c.write("transit/keys/"+key+"/config", map[string]any{"deletion_allowed": "true"}); err != nil {
				t.Fatal(err)
			}
			if err := c.delete("transit/keys/" + key); err != nil {
				t.Fatal(err)
			}
			if r, err := c.read("transit/keys/" + key); r != nil || err != nil {
				t.Fatalf("read deleted key = %v, %v", r, err)
			}
			// The key is a kmsledger key: gone for the kms API too.
			if _, err := env.Root.KeyStatus(ctx(t), enclave, &kms.KeyStatusRequest{Name: key}); err == nil {
				t.Fatal("the kms API still describes a key deleted over Transit")
			}
		})
	}
}

// TestTransitErrors: error cases answer 4xx with Vault's words (the SDKs
// would retry a 5xx).
func TestTransitErrors(t *testing.T) {
	for _, c := range clients(t, rootToken()) {
		t.Run(c.name(), func(t *testing.T) {
			key := harness.UniqueName("e")
			if _, err := c.write("transit/keys/"+key, nil); err != nil {
				t.Fatal(err)
			}
			for in, msg := range map[string]string{
				"v1:abc": "no prefix", "vault:v1": "wrong number of fields", "vault:vX:abc": "version number could not be decoded",
				"vault:v9:abc": "version is too new", "vault:v1:!!!": "could not decode base64", "vault:v1:AAAA": "invalid ciphertext length",
			} {
				_, err := c.write("transit/decrypt/"+key, map[string]any{"ciphertext": in})
				wantStatus(t, err, 400, msg)
			}
			_, err := c.write("transit/decrypt/"+key+"-missing", map[string]any{"ciphertext": "vault:v1:AAAA"})
			wantStatus(t, err, 400, "encryption key not found")
			_, err = c.write("transit/encrypt/"+key, map[string]any{})
			wantStatus(t, err, 400, "missing plaintext to encrypt")
			_, err = c.write("transit/keys/"+key+"-rsa", map[string]any{"type": "rsa-4096"})
			wantStatus(t, err, 400, "unknown key type")
			_, err = c.write("transit/no/such/endpoint", nil)
			wantStatus(t, err, 404, "unsupported path")
			// A missing engine path under no mount is a 404 too.
			if r, err := c.read("nomount/keys/x"); r != nil || err != nil {
				t.Fatalf("read under no mount = %v, %v", r, err)
			}
		})
	}
}

// TestTransitBatch: a batch with a failed item is 400 with every result;
// the SDKs return the data with the error.
func TestTransitBatch(t *testing.T) {
	for _, c := range clients(t, rootToken()) {
		t.Run(c.name(), func(t *testing.T) {
			key := harness.UniqueName("b")
			if _, err := c.write("transit/keys/"+key, nil); err != nil {
				t.Fatal(err)
			}
			items := []any{
				map[string]any{"plaintext": b64("one"), "reference": "1"},
				map[string]any{"plaintext": "***", "reference": "2"},
			}
			_, err := c.write("transit/encrypt/"+key, map[string]any{"batch_input": items})
			wantStatus(t, err, 400, "")
			r, err := c.write("transit/encrypt/"+key, map[string]any{"batch_input": items, "partial_failure_response_code": 207})
			if err != nil || r == nil {
				t.Fatalf("partial_failure_response_code 207: %v, %v", r, err)
			}
			res := r.Data["batch_results"].([]any)
			first, second := res[0].(map[string]any), res[1].(map[string]any)
			if first["reference"] != "1" || first["ciphertext"] == nil || second["reference"] != "2" || second["error"] == nil {
				t.Fatalf("batch_results = %v", res)
			}
			r, err = c.write("transit/decrypt/"+key, map[string]any{"batch_input": []any{map[string]any{"ciphertext": first["ciphertext"]}}})
			if err != nil || r.Data["batch_results"].([]any)[0].(map[string]any)["plaintext"] != b64("one") {
				t.Fatalf("batch decrypt = %v, %v", r, err)
			}
		})
	}
}

// TestTransitAccess: tokens of nobody, of a narrow User, and upsert rights.
func TestTransitAccess(t *testing.T) {
	key := harness.UniqueName("a")
	if _, err := clients(t, rootToken())[0].write("transit/keys/"+key, nil); err != nil {
		t.Fatal(err)
	}
	narrow, _ := user(t, cmds.KeyStatus)
	creator, _ := user(t, cmds.KeyEncrypt, cmds.KeyDecrypt, cmds.KeyCreate, cmds.KeyStatus)
	for _, tok := range []string{"", "bogus", narrow} {
		for _, c := range clients(t, tok) {
			_, err := c.write("transit/encrypt/"+key, map[string]any{"plaintext": ""})
			wantStatus(t, err, 403, "permission denied")
		}
	}
	for _, c := range clients(t, creator) {
		up := harness.UniqueName("up")
		ctxt := b64(`{"aws:s3:arn":"arn:aws:s3:::b/o"}`)
		r, err := c.write("transit/encrypt/"+up, map[string]any{"plaintext": b64("k"), "context": ctxt})
		if err != nil {
			t.Fatalf("%s: upsert: %v", c.name(), err)
		}
		k, err := c.read("transit/keys/" + up)
		if err != nil || k.Data["derived"] != true {
			t.Fatalf("%s: upserted key = %v, %v; want derived", c.name(), k, err)
		}
		if _, err := c.write("transit/decrypt/"+up, map[string]any{"ciphertext": str(t, r, "ciphertext"), "context": ctxt}); err != nil {
			t.Fatalf("%s: decrypt: %v", c.name(), err)
		}
		if _, err := c.lookupSelf(); err != nil {
			t.Fatalf("%s: lookup-self: %v", c.name(), err)
		}
	}
}

// TestTransitLogins: AppRole login, renewal, revocation and expiry.
func TestTransitLogins(t *testing.T) {
	root := clients(t, rootToken())[0]
	key := harness.UniqueName("l")
	if _, err := root.write("transit/keys/"+key, nil); err != nil {
		t.Fatal(err)
	}
	_, id := user(t, cmds.KeyEncrypt)
	role := func(name, ttl string) (string, string) {
		t.Helper()
		if _, err := root.write("auth/approle/role/"+name, map[string]any{"identity": id.String(), "token_ttl": ttl}); err != nil {
			t.Fatal(err)
		}
		r, err := root.read("auth/approle/role/" + name + "/role-id")
		if err != nil {
			t.Fatal(err)
		}
		s, err := root.write("auth/approle/role/"+name+"/secret-id", nil)
		if err != nil {
			t.Fatal(err)
		}
		return str(t, r, "role_id"), str(t, s, "secret_id")
	}
	roleID, secretID := role(harness.UniqueName("r"), "1h")
	for _, c := range clients(t, "") {
		t.Run(c.name(), func(t *testing.T) {
			_, err := c.approleLogin(roleID, "wrong")
			wantStatus(t, err, 400, "invalid role or secret ID")
			r, err := c.approleLogin(roleID, secretID)
			if err != nil || r.Auth == nil {
				t.Fatalf("login = %v, %v", r, err)
			}
			c.setToken(r.Auth["client_token"].(string))
			defer c.setToken("")
			if _, err := c.write("transit/encrypt/"+key, map[string]any{"plaintext": ""}); err != nil {
				t.Fatalf("encrypt with the login token: %v", err)
			}
			look, err := c.lookupSelf()
			if err != nil || num(t, look, "creation_ttl") != 3600 {
				t.Fatalf("lookup-self = %v, %v", look, err)
			}
			ren, err := c.renewSelf(600)
			if err != nil || ren.Auth["lease_duration"] != 600 {
				t.Fatalf("renew-self = %v, %v", ren, err)
			}
			if err := c.revokeSelf(); err != nil {
				t.Fatalf("revoke-self: %v", err)
			}
			_, err = c.write("transit/encrypt/"+key, map[string]any{"plaintext": ""})
			wantStatus(t, err, 403, "permission denied")
		})
	}
	// Expiry: a role whose tokens live one second.
	shortID, shortSecret := role(harness.UniqueName("short"), "1s")
	c := clients(t, "")[1]
	r, err := c.approleLogin(shortID, shortSecret)
	if err != nil {
		t.Fatal(err)
	}
	c.setToken(r.Auth["client_token"].(string))
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := c.write("transit/encrypt/"+key, map[string]any{"plaintext": ""})
		if status(err) == 403 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a 1 s token still works after 15 s (last err %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
