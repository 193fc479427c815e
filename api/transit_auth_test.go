package api_test

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/wire"
)

// approle makes role r acting as identity id in enclave minio and returns
// its role id and a secret id.
func (s *transitStack) approle(t *testing.T, admin, role, id string, extra map[string]any) (roleID, secretID string) {
	t.Helper()
	body := map[string]any{"identity": id, "enclave": "minio"}
	for k, v := range extra {
		body[k] = v
	}
	s.call(t, "POST", "/v1/auth/approle/role/"+role, admin, body).want(t, 204, "")
	roleID = s.call(t, "GET", "/v1/auth/approle/role/"+role+"/role-id?enclave=minio", admin, nil).want(t, 200, "").str(t, "role_id")
	secretID = s.call(t, "POST", "/v1/auth/approle/role/"+role+"/secret-id", admin, map[string]any{"enclave": "minio"}).want(t, 200, "").str(t, "secret_id")
	return roleID, secretID
}

func TestTransitAppRole(t *testing.T) {
	s := newTransitStack(t)
	s.call(t, "POST", "/v1/transit/keys/k", s.RootKey, nil).want(t, 200, "")
	userKey := s.userWith(t, "minio", "KEY:ENCRYPT", "KEY:DECRYPT")
	userID := identityOfKey(t, userKey)
	roleID, secretID := s.approle(t, s.RootKey, "seaweedfs", userID, nil)

	// Login: the auth object vaultrs and the Go client read.
	r := s.call(t, "PUT", "/v1/auth/approle/login", "", map[string]any{"role_id": roleID, "secret_id": secretID}).want(t, 200, "")
	tok, _ := r.Auth["client_token"].(string)
	if !strings.HasPrefix(tok, "kmsl.") || r.Auth["lease_duration"] != float64(api.DefaultTransitTokenTTL/time.Second) || r.Auth["renewable"] != true {
		t.Fatalf("login auth = %v", r.Auth)
	}
	for _, f := range []string{"accessor", "policies", "token_policies", "entity_id", "token_type", "orphan"} {
		if _, ok := r.Auth[f]; !ok {
			t.Errorf("auth lacks %q", f)
		}
	}
	// The token acts as the role's identity, with its policy.
	ct := s.call(t, "PUT", "/v1/transit/encrypt/k", tok, map[string]any{"plaintext": b64s("x")}).want(t, 200, "").str(t, "ciphertext")
	s.call(t, "PUT", "/v1/transit/decrypt/k", tok, map[string]any{"ciphertext": ct}).want(t, 200, "")
	s.call(t, "DELETE", "/v1/transit/keys/k", tok, nil).want(t, 403, "permission denied")
	r = s.call(t, "GET", "/v1/auth/token/lookup-self", tok, nil).want(t, 200, "")
	if r.Data["path"] != "auth/approle/login" || r.Data["ttl"].(float64) <= 0 || r.Data["creation_ttl"] != float64(api.DefaultTransitTokenTTL/time.Second) {
		t.Fatalf("lookup-self = %v", r.Data)
	}
	// Renew: shorter on request.
	r = s.call(t, "PUT", "/v1/auth/token/renew-self", tok, map[string]any{"increment": "1h"}).want(t, 200, "")
	if r.Auth["lease_duration"] != 3600.0 || r.Auth["client_token"] != tok {
		t.Fatalf("renew-self auth = %v", r.Auth)
	}

	// Failures, all 400 with Vault's words.
	s.call(t, "PUT", "/v1/auth/approle/login", "", map[string]any{"secret_id": secretID}).want(t, 400, "missing role_id")
	s.call(t, "PUT", "/v1/auth/approle/login", "", map[string]any{"role_id": roleID}).want(t, 400, "missing secret_id")
	s.call(t, "PUT", "/v1/auth/approle/login", "", map[string]any{"role_id": roleID, "secret_id": "wrong"}).want(t, 400, "invalid role or secret ID")
	s.call(t, "PUT", "/v1/auth/approle/login", "", map[string]any{"role_id": "nope", "secret_id": secretID}).want(t, 400, "invalid role or secret ID")

	// Revocation ends the token at once.
	s.call(t, "PUT", "/v1/auth/token/revoke-self", tok, nil).want(t, 204, "")
	s.call(t, "PUT", "/v1/transit/encrypt/k", tok, map[string]any{"plaintext": ""}).want(t, 403, "permission denied")

	// Deleting the identity ends its tokens, and they stay dead if the
	// identity comes back.
	r = s.call(t, "PUT", "/v1/auth/approle/login", "", map[string]any{"role_id": roleID, "secret_id": secretID}).want(t, 200, "")
	tok2 := r.Auth["client_token"].(string)
	mustOK(t, s.root.DeleteIdentity(ctx, "minio", userID))
	s.call(t, "PUT", "/v1/transit/encrypt/k", tok2, map[string]any{"plaintext": ""}).want(t, 403, "permission denied")
	mustOK(t, s.root.CreateIdentity(ctx, "minio", &wire.CreateIdentityRequest{Identity: userID, Privilege: "User"}))
	s.call(t, "PUT", "/v1/transit/encrypt/k", tok2, map[string]any{"plaintext": ""}).want(t, 403, "permission denied")

	// Roles are managed by Admins of the enclave only.
	s.call(t, "POST", "/v1/auth/approle/role/evil", userKey, map[string]any{"identity": userID, "enclave": "minio"}).want(t, 403, "permission denied")
	s.call(t, "POST", "/v1/auth/approle/role/seaweedfs/secret-id", userKey, map[string]any{"enclave": "minio"}).want(t, 403, "permission denied")
	s.call(t, "POST", "/v1/auth/approle/role/x", s.RootKey, map[string]any{"enclave": "minio"}).want(t, 400, "missing identity")
	s.call(t, "POST", "/v1/auth/approle/role/x", s.RootKey, map[string]any{"identity": userID, "enclave": "nowhere"}).want(t, 400, "not served")
	s.call(t, "DELETE", "/v1/auth/approle/role/seaweedfs?enclave=minio", s.RootKey, nil).want(t, 204, "")
	s.call(t, "PUT", "/v1/auth/approle/login", "", map[string]any{"role_id": roleID, "secret_id": secretID}).want(t, 400, "invalid role or secret ID")

	// Nothing secret is in the ledger: no token, no secret id.
	if st := s.stateJSON(); strings.Contains(st, tok) || strings.Contains(st, secretID) || strings.Contains(st, tok2) {
		t.Fatal("the state holds a token or a secret id in clear")
	}
}

// Tokens expire: a role with a short TTL, and the configured default.
func TestTransitTokenExpiry(t *testing.T) {
	s := newTransitStack(t, func(c *api.Config) { c.TransitTokenTTL = 90 * time.Minute })
	s.call(t, "POST", "/v1/transit/keys/k", s.RootKey, nil).want(t, 200, "")
	id := identityOfKey(t, s.userWith(t, "minio", "KEY:ENCRYPT"))
	roleID, secretID := s.approle(t, s.RootKey, "short", id, map[string]any{"token_ttl": "1s"})
	r := s.call(t, "PUT", "/v1/auth/approle/login", "", map[string]any{"role_id": roleID, "secret_id": secretID}).want(t, 200, "")
	if r.Auth["lease_duration"] != 1.0 {
		t.Fatalf("lease_duration = %v, want 1", r.Auth["lease_duration"])
	}
	tok := r.Auth["client_token"].(string)
	deadline := time.Now().Add(10 * time.Second)
	for s.call(t, "PUT", "/v1/transit/encrypt/k", tok, map[string]any{"plaintext": ""}).Status == 200 {
		if time.Now().After(deadline) {
			t.Fatal("a 1 s token still works after 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.call(t, "PUT", "/v1/transit/encrypt/k", tok, map[string]any{"plaintext": ""}).want(t, 403, "permission denied")

	roleID, secretID = s.approle(t, s.RootKey, "default", id, nil)
	r = s.call(t, "PUT", "/v1/auth/approle/login", "", map[string]any{"role_id": roleID, "secret_id": secretID}).want(t, 200, "")
	if r.Auth["lease_duration"] != 5400.0 {
		t.Fatalf("lease_duration = %v, want the configured 5400", r.Auth["lease_duration"])
	}
}

func TestTransitCertLogin(t *testing.T) {
	s := newTransitStack(t)
	key, _ := newIdentity(t)
	s.call(t, "PUT", "/v1/auth/cert/login", "", nil).want(t, 400, "no client certificate")
	// A certificate of no identity of a Transit enclave: refused.
	withCert := func(apiKey string) *http.Client {
		signer, err := wire.ParseAPIKey(apiKey)
		mustOK(t, err)
		cert, err := wire.ClientCertificate(signer)
		mustOK(t, err)
		tr := s.http.Transport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: s.Roots, Certificates: []tls.Certificate{cert}}
		return &http.Client{Transport: tr}
	}
	orig := s.http
	s.http = withCert(key)
	s.call(t, "PUT", "/v1/auth/cert/login", "", nil).want(t, 400, "invalid certificate")
	s.http = withCert(s.userWith(t, "minio", "KEY:ENCRYPT"))
	r := s.call(t, "PUT", "/v1/auth/cert/login", "", map[string]any{"name": "any"}).want(t, 200, "")
	s.http = orig
	tok := r.Auth["client_token"].(string)
	s.call(t, "POST", "/v1/transit/keys/k", s.RootKey, nil).want(t, 200, "")
	s.call(t, "PUT", "/v1/transit/encrypt/k", tok, map[string]any{"plaintext": ""}).want(t, 200, "")
}
