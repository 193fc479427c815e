package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

func TestTransitKeyLifecycle(t *testing.T) {
	s := newTransitStack(t)
	root := s.RootKey

	// An empty engine lists 404 with an empty error list (RustFS's probe).
	r := s.call(t, "LIST", "/v1/transit/keys", root, nil).want(t, 404, "")
	if string(r.Raw) != `{"errors":[]}` {
		t.Fatalf("empty list body = %s, want {\"errors\":[]}", r.Raw)
	}
	// A missing key reads 404 {"errors":[]} (SeaweedFS's health probe).
	r = s.call(t, "GET", "/v1/transit/keys/health-check-dummy-key", root, nil).want(t, 404, "")
	if string(r.Raw) != `{"errors":[]}` {
		t.Fatalf("missing key body = %s", r.Raw)
	}

	r = s.call(t, "POST", "/v1/transit/keys/k1", root, map[string]any{"type": "aes256-gcm96"}).want(t, 200, "")
	if r.Data["name"] != "k1" || r.Data["type"] != "aes256-gcm96" || r.Data["latest_version"] != 1.0 || r.Data["derived"] != false ||
		r.Data["deletion_allowed"] != false || r.Data["min_decryption_version"] != 1.0 || r.Data["supports_encryption"] != true {
		t.Fatalf("create k1 data = %v", r.Data)
	}
	// Every envelope field vaultrs requires.
	var env map[string]json.RawMessage
	mustOK(t, json.Unmarshal(r.Raw, &env))
	for _, f := range []string{"request_id", "lease_id", "lease_duration", "renewable", "data", "warnings", "auth", "wrap_info"} {
		if _, ok := env[f]; !ok {
			t.Errorf("envelope lacks %q: %s", f, r.Raw)
		}
	}
	// Creating again answers the key unchanged, with a warning (the CLI's
	// weak typing: "true" as a string).
	r = s.call(t, "PUT", "/v1/transit/keys/k1", root, map[string]any{"derived": "true"}).want(t, 200, "")
	if r.Data["derived"] != false || len(r.Warnings) != 1 {
		t.Fatalf("second create = %v warnings %v, want the key unchanged and a warning", r.Data, r.Warnings)
	}
	s.call(t, "POST", "/v1/transit/keys/k2", root, map[string]any{"type": "chacha20-poly1305", "derived": true}).want(t, 200, "")
	s.call(t, "POST", "/v1/transit/keys/k3", root, map[string]any{"type": "rsa-4096"}).want(t, 400, "unknown key type")
	s.call(t, "POST", "/v1/transit/keys/k3", root, map[string]any{"exportable": true}).want(t, 400, "not supported")

	for _, lst := range []struct{ method, path string }{{"LIST", "/v1/transit/keys"}, {"LIST", "/v1/transit/keys/"}, {"GET", "/v1/transit/keys?list=true"}} {
		r = s.call(t, lst.method, lst.path, root, nil).want(t, 200, "")
		if keys, _ := r.Data["keys"].([]any); !slices.Equal(keys, []any{"k1", "k2"}) {
			t.Fatalf("%s %s keys = %v, want [k1 k2]", lst.method, lst.path, r.Data["keys"])
		}
	}
	s.call(t, "GET", "/v1/transit/keys?list=maybe", root, nil).want(t, 400, "list")

	r = s.call(t, "POST", "/v1/transit/keys/k1/rotate", root, nil).want(t, 200, "")
	if r.Data["latest_version"] != 2.0 || len(r.Data["keys"].(map[string]any)) != 2 {
		t.Fatalf("rotate = %v, want latest_version 2 and two keys", r.Data)
	}
	s.call(t, "POST", "/v1/transit/keys/nope/rotate", root, nil).want(t, 400, "key not found")

	// Delete needs deletion_allowed.
	s.call(t, "DELETE", "/v1/transit/keys/k1", root, nil).want(t, 400, "deletion is not allowed for this key")
	r = s.call(t, "POST", "/v1/transit/keys/k1/config", root, map[string]any{"deletion_allowed": true, "min_decryption_version": 2}).want(t, 200, "")
	if r.Data["deletion_allowed"] != true || r.Data["min_decryption_version"] != 2.0 {
		t.Fatalf("config = %v", r.Data)
	}
	s.call(t, "POST", "/v1/transit/keys/k1/config", root, map[string]any{"min_decryption_version": 3}).want(t, 400, "latest key version is 2")
	s.call(t, "POST", "/v1/transit/keys/k1/config", root, map[string]any{"min_encryption_version": 1}).want(t, 400, "")
	s.call(t, "POST", "/v1/transit/keys/nope/config", root, map[string]any{"deletion_allowed": true}).want(t, 400, "no existing key named nope")
	r = s.call(t, "DELETE", "/v1/transit/keys/k1", root, nil).want(t, http.StatusNoContent, "")
	s.call(t, "GET", "/v1/transit/keys/k1", root, nil).want(t, 404, "")
	s.call(t, "DELETE", "/v1/transit/keys/k1", root, nil).want(t, 400, "not found")

	// The settings are ledger facts: they survive a restart.
	s = s.restart(t)
	r = s.call(t, "GET", "/v1/transit/keys/k2", root, nil).want(t, 200, "")
	if r.Data["derived"] != true || r.Data["kdf"] != "hkdf_sha256" || r.Data["type"] != "chacha20-poly1305" {
		t.Fatalf("k2 after restart = %v", r.Data)
	}
}

// A second mount with several segments serves its own enclave.
func TestTransitMounts(t *testing.T) {
	s := newTransitStack(t)
	s.call(t, "POST", "/v1/sops/team/keys/dev", s.RootKey, nil).want(t, 200, "")
	s.call(t, "GET", "/v1/transit/keys/dev", s.RootKey, nil).want(t, 404, "")
	names, err := s.root.ListKeys(ctx, "team", "", "", 0)
	mustOK(t, err)
	if len(names.Keys) != 1 || names.Keys[0].Name != "dev" {
		t.Fatalf("team keys = %v, want [dev]", names)
	}
	s.call(t, "POST", "/v1/nomount/keys/dev", s.RootKey, nil).want(t, 404, "")
	s.call(t, "POST", "/v1/transit/unknown/thing", s.RootKey, nil).want(t, 404, "unsupported path")
	s.call(t, "POST", "/v1/sys/mounts/sops/team", s.RootKey, map[string]any{"type": "transit"}).want(t, 204, "")
	s.call(t, "POST", "/v1/sys/mounts/other", s.RootKey, map[string]any{"type": "transit"}).want(t, 400, "")
}
