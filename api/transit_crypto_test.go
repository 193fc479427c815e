package api_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/api"
)

func TestTransitEncryptDecrypt(t *testing.T) {
	s := newTransitStack(t)
	root := s.RootKey
	s.call(t, "POST", "/v1/transit/keys/k", root, nil).want(t, 200, "")
	seaweedCtx := b64s(`{"aws:s3:arn":"arn:aws:s3:::bucket/object"}`)

	// SeaweedFS: a context on a non-derived key is accepted and ignored.
	r := s.call(t, "PUT", "/v1/transit/encrypt/k", root, map[string]any{"plaintext": b64s("data key"), "context": seaweedCtx}).want(t, 200, "")
	ct := r.str(t, "ciphertext")
	if !strings.HasPrefix(ct, "vault:v1:") || r.Data["key_version"] != 1.0 {
		t.Fatalf("encrypt = %v, want vault:v1: and key_version 1", r.Data)
	}
	if raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(ct, "vault:v1:")); len(raw) != 12+8+16 {
		t.Errorf("ciphertext body %d bytes, want nonce 12 + 8 + tag 16", len(raw))
	}
	for _, c := range []any{nil, seaweedCtx, b64s("other")} {
		body := map[string]any{"ciphertext": ct}
		if c != nil {
			body["context"] = c
		}
		r = s.call(t, "PUT", "/v1/transit/decrypt/k", root, body).want(t, 200, "")
		if r.str(t, "plaintext") != b64s("data key") {
			t.Fatalf("decrypt with context %v = %v", c, r.Data)
		}
	}
	// "vault:v0:" is version 1.
	s.call(t, "PUT", "/v1/transit/decrypt/k", root, map[string]any{"ciphertext": strings.Replace(ct, "vault:v1:", "vault:v0:", 1)}).want(t, 200, "")

	// Associated data must be repeated.
	r = s.call(t, "PUT", "/v1/transit/encrypt/k", root, map[string]any{"plaintext": b64s("x"), "associated_data": b64s("ad")}).want(t, 200, "")
	adCT := r.str(t, "ciphertext")
	s.call(t, "PUT", "/v1/transit/decrypt/k", root, map[string]any{"ciphertext": adCT}).want(t, 400, "cipher: message authentication failed")
	s.call(t, "PUT", "/v1/transit/decrypt/k", root, map[string]any{"ciphertext": adCT, "associated_data": b64s("ad")}).want(t, 200, "")
	s.call(t, "PUT", "/v1/transit/decrypt/k", root, map[string]any{"ciphertext": adCT, "associated_data": "!!"}).want(t, 400, "base64")

	// The ciphertext checks, in Vault's words.
	for in, msg := range map[string]string{
		"v1:abc": "invalid ciphertext: no prefix", "vault:v1": "wrong number of fields", "vault:vX:abc": "version number could not be decoded",
		"vault:v9:abc": "version is too new", "vault:v1:!!!": "could not decode base64", "vault:v1:AAAA": "invalid ciphertext length",
	} {
		s.call(t, "PUT", "/v1/transit/decrypt/k", root, map[string]any{"ciphertext": in}).want(t, 400, msg)
	}
	s.call(t, "PUT", "/v1/transit/decrypt/k", root, map[string]any{}).want(t, 400, "missing ciphertext to decrypt")
	s.call(t, "PUT", "/v1/transit/encrypt/k", root, map[string]any{}).want(t, 400, "missing plaintext to encrypt")
	s.call(t, "PUT", "/v1/transit/encrypt/k", root, map[string]any{"plaintext": "***"}).want(t, 400, "illegal base64")
	s.call(t, "PUT", "/v1/transit/decrypt/missing", root, map[string]any{"ciphertext": ct}).want(t, 400, "encryption key not found")
	s.call(t, "PUT", "/v1/transit/encrypt/k", root, map[string]any{"plaintext": "", "key_version": 2}).want(t, 400, "higher than the latest")
	s.call(t, "PUT", "/v1/transit/encrypt/k", root, map[string]any{"plaintext": "", "nonce": "AAAA"}).want(t, 400, "nonce")
	s.call(t, "PUT", "/v1/transit/encrypt/k", root, "not json").want(t, 400, "JSON")

	// Rotation: new ciphertexts name v2, old ones still decrypt, rewrap
	// moves them to v2, min_decryption_version retires v1.
	s.call(t, "POST", "/v1/transit/keys/k/rotate", root, nil).want(t, 200, "")
	r = s.call(t, "PUT", "/v1/transit/encrypt/k", root, map[string]any{"plaintext": b64s("new")}).want(t, 200, "")
	if !strings.HasPrefix(r.str(t, "ciphertext"), "vault:v2:") {
		t.Fatalf("after rotate: %v", r.Data)
	}
	r = s.call(t, "PUT", "/v1/transit/encrypt/k", root, map[string]any{"plaintext": b64s("old"), "key_version": 1}).want(t, 200, "")
	if !strings.HasPrefix(r.str(t, "ciphertext"), "vault:v1:") {
		t.Fatalf("key_version 1: %v", r.Data)
	}
	r = s.call(t, "POST", "/v1/transit/rewrap/k", root, map[string]any{"ciphertext": ct}).want(t, 200, "")
	rewrapped := r.str(t, "ciphertext")
	if !strings.HasPrefix(rewrapped, "vault:v2:") || r.Data["key_version"] != 2.0 {
		t.Fatalf("rewrap = %v", r.Data)
	}
	s.call(t, "POST", "/v1/transit/rewrap/k", root, map[string]any{"ciphertext": adCT}).want(t, 400, "message authentication failed")
	s.call(t, "POST", "/v1/transit/keys/k/config", root, map[string]any{"min_decryption_version": 2}).want(t, 200, "")
	s.call(t, "PUT", "/v1/transit/decrypt/k", root, map[string]any{"ciphertext": ct}).want(t, 400, "disallowed by policy (too old)")
	r = s.call(t, "PUT", "/v1/transit/decrypt/k", root, map[string]any{"ciphertext": rewrapped}).want(t, 200, "")
	if r.str(t, "plaintext") != b64s("data key") {
		t.Fatalf("decrypt(rewrap) = %v", r.Data)
	}
}

func TestTransitBatch(t *testing.T) {
	s := newTransitStack(t)
	root := s.RootKey
	s.call(t, "POST", "/v1/transit/keys/k", root, nil).want(t, 200, "")
	r := s.call(t, "POST", "/v1/transit/encrypt/k", root, map[string]any{"batch_input": []map[string]any{
		{"plaintext": b64s("a"), "reference": "a"},
		{"plaintext": "not base64", "reference": "b"},
		{"plaintext": b64s("c")},
	}})
	// A failed item: 400 with the envelope and batch_results, no errors.
	r.want(t, 400, "")
	res, _ := r.Data["batch_results"].([]any)
	if len(res) != 3 || r.Errors != nil {
		t.Fatalf("batch = %s", r.Raw)
	}
	first, second, third := res[0].(map[string]any), res[1].(map[string]any), res[2].(map[string]any)
	if first["reference"] != "a" || !strings.HasPrefix(first["ciphertext"].(string), "vault:v1:") || first["error"] != nil {
		t.Fatalf("item 0 = %v", first)
	}
	if second["reference"] != "b" || !strings.Contains(second["error"].(string), "illegal base64") || second["ciphertext"] != nil {
		t.Fatalf("item 1 = %v", second)
	}
	if third["reference"] != "" || third["ciphertext"] == nil {
		t.Fatalf("item 2 = %v, want a ciphertext and reference \"\"", third)
	}
	// partial_failure_response_code when some succeeded.
	r = s.call(t, "POST", "/v1/transit/encrypt/k", root, map[string]any{"partial_failure_response_code": 207, "batch_input": []map[string]any{
		{"plaintext": b64s("a")}, {"plaintext": "?"}}})
	r.want(t, 207, "")

	r = s.call(t, "POST", "/v1/transit/decrypt/k", root, map[string]any{"batch_input": []map[string]any{
		{"ciphertext": first["ciphertext"]}, {"ciphertext": "vault:v1:AAAA"}}}).want(t, 400, "")
	res = r.Data["batch_results"].([]any)
	if res[0].(map[string]any)["plaintext"] != b64s("a") || !strings.Contains(res[1].(map[string]any)["error"].(string), "invalid ciphertext length") {
		t.Fatalf("decrypt batch = %s", r.Raw)
	}
	s.call(t, "POST", "/v1/transit/encrypt/k", root, map[string]any{"batch_input": []any{}}).want(t, 400, "missing batch input")
	s.call(t, "POST", "/v1/transit/encrypt/k", root, map[string]any{"batch_input": []map[string]any{
		{"plaintext": "", "context": b64s("c")}, {"plaintext": ""}}}).want(t, 400, "context should be set either in all")
	s.call(t, "POST", "/v1/transit/encrypt/k", root, map[string]any{"batch_input": "x"}).want(t, 400, "array")
}

func TestTransitDerivedAndUpsert(t *testing.T) {
	s := newTransitStack(t)
	ctxA, ctxB := b64s(`{"aws:s3:arn":"arn:aws:s3:::bucket/a"}`), b64s(`{"aws:s3:arn":"arn:aws:s3:::bucket/b"}`)

	// A User that may only encrypt cannot create keys by encrypting.
	enc := s.userWith(t, "minio", "KEY:ENCRYPT", "KEY:DECRYPT")
	s.call(t, "PUT", "/v1/transit/encrypt/sw", enc, map[string]any{"plaintext": b64s("k"), "context": ctxA}).want(t, 403, "permission denied")
	if _, err := s.root.KeyStatus(ctx, "minio", "sw", 0); err == nil {
		t.Fatal("a refused upsert created the key")
	}
	// One that may also create keys does, derived because of the context.
	creator := s.userWith(t, "minio", "KEY:ENCRYPT", "KEY:DECRYPT", "KEY:CREATE", "KEY:STATUS")
	r := s.call(t, "PUT", "/v1/transit/encrypt/sw", creator, map[string]any{"plaintext": b64s("key a"), "context": ctxA}).want(t, 200, "")
	ct := r.str(t, "ciphertext")
	r = s.call(t, "GET", "/v1/transit/keys/sw", creator, nil).want(t, 200, "")
	if r.Data["derived"] != true {
		t.Fatalf("upserted key = %v, want derived", r.Data)
	}
	r = s.call(t, "PUT", "/v1/transit/decrypt/sw", enc, map[string]any{"ciphertext": ct, "context": ctxA}).want(t, 200, "")
	if r.str(t, "plaintext") != b64s("key a") {
		t.Fatalf("decrypt = %v", r.Data)
	}
	s.call(t, "PUT", "/v1/transit/decrypt/sw", enc, map[string]any{"ciphertext": ct, "context": ctxB}).want(t, 400, "message authentication failed")
	s.call(t, "PUT", "/v1/transit/decrypt/sw", enc, map[string]any{"ciphertext": ct}).want(t, 400, "missing 'context' for key derivation")
	s.call(t, "PUT", "/v1/transit/encrypt/sw", enc, map[string]any{"plaintext": ""}).want(t, 400, "missing 'context' for key derivation")

	// Without a context the upserted key is not derived (sops).
	s.call(t, "PUT", "/v1/transit/encrypt/plain", creator, map[string]any{"plaintext": b64s("x")}).want(t, 200, "")
	r = s.call(t, "GET", "/v1/transit/keys/plain", creator, nil).want(t, 200, "")
	if r.Data["derived"] != false {
		t.Fatalf("upserted key without context = %v, want not derived", r.Data)
	}
	// Decrypt never creates a key.
	s.call(t, "PUT", "/v1/transit/decrypt/other", creator, map[string]any{"ciphertext": ct}).want(t, 400, "encryption key not found")
}

func TestTransitDisableUpsert(t *testing.T) {
	s := newTransitStack(t, func(c *api.Config) { c.TransitDisableUpsert = true })
	s.call(t, "PUT", "/v1/transit/encrypt/k", s.RootKey, map[string]any{"plaintext": ""}).want(t, 400, "encryption key not found")
	r := s.call(t, "GET", "/v1/transit/config/keys", s.RootKey, nil).want(t, 200, "")
	if r.Data["disable_upsert"] != true {
		t.Fatalf("config/keys = %v", r.Data)
	}
}

func TestTransitDataKeyHMACRandomHash(t *testing.T) {
	s := newTransitStack(t)
	root := s.RootKey
	s.call(t, "POST", "/v1/transit/keys/k", root, nil).want(t, 200, "")

	r := s.call(t, "POST", "/v1/transit/datakey/plaintext/k", root, map[string]any{"bits": 512}).want(t, 200, "")
	pt, _ := base64.StdEncoding.DecodeString(r.str(t, "plaintext"))
	if len(pt) != 64 {
		t.Fatalf("datakey plaintext %d bytes, want 64", len(pt))
	}
	d := s.call(t, "POST", "/v1/transit/decrypt/k", root, map[string]any{"ciphertext": r.str(t, "ciphertext")}).want(t, 200, "")
	if d.str(t, "plaintext") != r.str(t, "plaintext") {
		t.Fatal("decrypt(datakey) != datakey plaintext")
	}
	r = s.call(t, "POST", "/v1/transit/datakey/wrapped/k", root, nil).want(t, 200, "")
	if _, ok := r.Data["plaintext"]; ok {
		t.Fatalf("wrapped datakey returned a plaintext: %v", r.Data)
	}
	s.call(t, "POST", "/v1/transit/datakey/other/k", root, nil).want(t, 400, "must be 'plaintext' or 'wrapped'")
	s.call(t, "POST", "/v1/transit/datakey/wrapped/k", root, map[string]any{"bits": 100}).want(t, 400, "invalid bit length")

	// HMAC with sha2-256 is the kms API's MAC of the same version.
	r = s.call(t, "POST", "/v1/transit/hmac/k", root, map[string]any{"input": b64s("msg")}).want(t, 200, "")
	mac := r.str(t, "hmac")
	kmsMAC, err := s.root.MAC(ctx, "minio", "k", 1, []byte("msg"))
	mustOK(t, err)
	if mac != "vault:v1:"+base64.StdEncoding.EncodeToString(kmsMAC.MAC) {
		t.Fatalf("hmac = %s, want the kms API's MAC", mac)
	}
	r = s.call(t, "POST", "/v1/transit/verify/k", root, map[string]any{"input": b64s("msg"), "hmac": mac}).want(t, 200, "")
	if r.Data["valid"] != true {
		t.Fatalf("verify = %v", r.Data)
	}
	r = s.call(t, "POST", "/v1/transit/verify/k", root, map[string]any{"input": b64s("other"), "hmac": mac}).want(t, 200, "")
	if r.Data["valid"] != false {
		t.Fatalf("verify other input = %v", r.Data)
	}
	r = s.call(t, "POST", "/v1/transit/hmac/k/sha3-512", root, map[string]any{"input": b64s("msg")}).want(t, 200, "")
	r = s.call(t, "POST", "/v1/transit/verify/k/sha3-512", root, map[string]any{"input": b64s("msg"), "hmac": r.str(t, "hmac")}).want(t, 200, "")
	if r.Data["valid"] != true {
		t.Fatalf("verify sha3-512 = %v", r.Data)
	}
	s.call(t, "POST", "/v1/transit/hmac/k/md5", root, map[string]any{"input": b64s("msg")}).want(t, 400, "unsupported algorithm")
	s.call(t, "POST", "/v1/transit/hmac/k", root, nil).want(t, 400, "missing input for HMAC")
	s.call(t, "POST", "/v1/transit/verify/k", root, map[string]any{"input": "", "hmac": "v1:x"}).want(t, 400, "invalid HMAC to verify: no prefix")
	s.call(t, "POST", "/v1/transit/verify/k", root, map[string]any{"input": "", "hmac": "vault:v7:AAAA"}).want(t, 400, "version is too new")

	r = s.call(t, "POST", "/v1/transit/random/16", root, map[string]any{"format": "hex"}).want(t, 200, "")
	if len(r.str(t, "random_bytes")) != 32 {
		t.Fatalf("random/16 hex = %v", r.Data)
	}
	r = s.call(t, "POST", "/v1/transit/random", root, nil).want(t, 200, "")
	if b, _ := base64.StdEncoding.DecodeString(r.str(t, "random_bytes")); len(b) != 32 {
		t.Fatalf("random = %v", r.Data)
	}
	s.call(t, "POST", "/v1/transit/random/platform/200000", root, nil).want(t, 400, "less than 131072")
	r = s.call(t, "POST", "/v1/transit/hash/sha2-512", root, map[string]any{"input": b64s("abc"), "format": "base64"}).want(t, 200, "")
	if sum, _ := base64.StdEncoding.DecodeString(r.str(t, "sum")); len(sum) != 64 || !bytes.HasPrefix(sum, []byte{0xdd, 0xaf, 0x35}) {
		t.Fatalf("sha2-512(abc) = %x", sum)
	}
	s.call(t, "POST", "/v1/transit/hash", root, nil).want(t, 400, "input missing")
}
