package api_test

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/api/wire"
)

// keyActions are the key lifecycle actions of the admin API.
var keyActions = []string{"disable", "enable", "schedule-deletion", "restore", "release"}

// TestKeyActionRouteRows: every key lifecycle action has its own route row
// (findable by its path), with the same access (Admin) and body limit as
// the catch-all {action} row that answers unknown actions.
func TestKeyActionRouteRows(t *testing.T) {
	s := startStack(t, t.TempDir(), "")
	routes := api.New(api.Config{Handler: s.Handler, Projection: s.Proj}).RouteInfos()
	rows := map[string]api.RouteInfo{}
	for _, rt := range routes {
		rows[rt.Method+" "+rt.Path] = rt
	}
	const prefix = "POST /v1/admin/{enclave}/keys/{name}/"
	catchAll, ok := rows[prefix+"{action}"]
	if !ok || catchAll.Access != "admin" || catchAll.MaxBody <= 0 {
		t.Fatalf("catch-all row = %+v (found %v), want admin access and a body limit", catchAll, ok)
	}
	for _, action := range keyActions {
		rt, ok := rows[prefix+action]
		if !ok {
			t.Errorf("no route row %s%s", prefix, action)
			continue
		}
		if rt.Access != catchAll.Access || rt.MaxBody != catchAll.MaxBody || rt.Timeout != catchAll.Timeout {
			t.Errorf("row %s = %+v, want access, body limit and deadline of %+v", action, rt, catchAll)
		}
	}
}

// TestUnknownKeyAction: an action no route names answers 404 "unknown key
// action" to an Admin (400 if the body is malformed, as every action
// route), 403 to whoever may not run lifecycle actions (no certificate, a
// random one, a User allowed every key command, the Admin of another
// enclave), 413 to a body over the limit; nothing changes.
func TestUnknownKeyAction(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	root := n.Client(t, "")
	mustOK(t, root.CreateEnclave(ctx, "e"))
	mustOK(t, root.CreateEnclave(ctx, "o"))
	mustOK(t, root.CreateKey(ctx, "e", "k", "", false))
	userKey, userID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: userID}))
	allKeyCommands := map[string][]string{}
	for _, c := range []string{"CREATE", "DELETE", "IMPORT", "STATUS", "ENCRYPT", "DECRYPT", "GENERATE", "LIST", "LISTVERSIONS", "MAC"} {
		allKeyCommands["KEY:"+c] = []string{"*"}
	}
	mustOK(t, root.CreatePolicy(ctx, "e", &wire.CreatePolicyRequest{Name: "all", Allow: allKeyCommands}))
	mustOK(t, root.AssignPolicy(ctx, "e", userID, "all"))
	adminKey, adminID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: adminID, Privilege: "Admin"}))
	otherKey, otherID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "o", &wire.CreateIdentityRequest{Identity: otherID, Privilege: "Admin"}))
	admin := apiKeyCert(t, adminKey)
	const path = "/v1/admin/e/keys/k/frobnicate"
	post := func(cert *tls.Certificate, contentLength int, body string) (int, string) {
		c := dialRaw(t, n, cert)
		c.send("POST", path, contentLength, []byte(body))
		resp, b := c.answer()
		return resp.StatusCode, b
	}

	for name, cert := range map[string]*tls.Certificate{"NoCertificate": nil, "Random": ptr(randomCert(t)),
		"User": ptr(apiKeyCert(t, userKey)), "OtherAdmin": ptr(apiKeyCert(t, otherKey))} {
		if status, body := post(cert, 2, "{}"); status != http.StatusForbidden {
			t.Errorf("%s POST %s = %d %s, want 403", name, path, status, body)
		}
	}
	if status, body := post(&admin, 2, "{}"); status != http.StatusNotFound || !strings.Contains(body, `unknown key action \"frobnicate\"`) {
		t.Errorf("Admin POST %s = %d %s, want 404 unknown key action \"frobnicate\"", path, status, body)
	}
	if status, body := post(&admin, 0, ""); status != http.StatusNotFound {
		t.Errorf("Admin POST %s without body = %d %s, want 404", path, status, body)
	}
	if status, body := post(&admin, 11, `{"version":`); status != http.StatusBadRequest || !strings.Contains(body, "malformed") {
		t.Errorf("Admin POST %s malformed = %d %s, want 400 malformed", path, status, body)
	}
	if status, body := post(&admin, 64<<20, ""); status != http.StatusRequestEntityTooLarge {
		t.Errorf("Admin POST %s of 64 MiB = %d %s, want 413", path, status, body)
	}
	info, err := root.KeyInfo(ctx, "e", "k")
	mustOK(t, err)
	if info.State != "enabled" || len(info.Versions) != 1 {
		t.Fatalf("key after unknown actions = %+v, want enabled with one version", info)
	}
}
