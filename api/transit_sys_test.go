package api_test

import (
	"encoding/json"
	"testing"
)

func TestTransitSys(t *testing.T) {
	s := newTransitStack(t)
	// The Go client's Sys().Health() asks for 299 in every state.
	r := s.call(t, "GET", "/v1/sys/health?standbycode=299&activecode=299&sealedcode=299", "", nil).want(t, 299, "")
	var h map[string]any
	decodeJSON(t, r.Raw, &h)
	if h["initialized"] != true || h["sealed"] != false || h["standby"] != false {
		t.Fatalf("health = %s", r.Raw)
	}
	s.call(t, "GET", "/v1/sys/health", "", nil).want(t, 200, "")
	s.call(t, "GET", "/v1/sys/health?activecode=abc", "", nil).want(t, 400, "activecode")
	if r := s.call(t, "HEAD", "/v1/sys/health", "", nil); r.Status != 200 || len(r.Raw) != 0 {
		t.Fatalf("HEAD health = %d %q", r.Status, r.Raw)
	}
	var init map[string]any
	decodeJSON(t, s.call(t, "GET", "/v1/sys/init", "", nil).want(t, 200, "").Raw, &init)
	if init["initialized"] != true {
		t.Fatalf("sys/init = %v", init)
	}
	s.call(t, "GET", "/v1/sys/seal-status", "", nil).want(t, 200, "")

	// lookup-self: numbers as JSON numbers (the Kubernetes KMS plugin),
	// the token never echoed.
	user := s.userWith(t, "minio", "KEY:ENCRYPT")
	r = s.call(t, "GET", "/v1/auth/token/lookup-self", user, nil).want(t, 200, "")
	if r.Data["ttl"] != 0.0 || r.Data["creation_ttl"] != 0.0 || r.Data["id"] != "" {
		t.Fatalf("lookup-self = %v", r.Data)
	}
	if meta, _ := r.Data["meta"].(map[string]any); meta["identity"] != identityOfKey(t, user) {
		t.Fatalf("lookup-self meta = %v", r.Data["meta"])
	}
	// API keys do not expire: nothing to renew.
	s.call(t, "PUT", "/v1/auth/token/renew-self", user, map[string]any{"increment": "1h"}).want(t, 400, "invalid lease ID")
	s.call(t, "GET", "/v1/auth/token/lookup-self", "", nil).want(t, 403, "permission denied")
}

func decodeJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	mustOK(t, json.Unmarshal(b, v))
}
