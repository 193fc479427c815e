package api_test

import (
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
)

// wantStatus fails unless err is a *client.Error with status (and, if
// msg is set, a message containing msg).
func wantStatus(t testing.TB, what string, err error, status int, msg string) {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != status || !strings.Contains(ce.Message, msg) {
		t.Fatalf("%s: err = %v, want status %d with %q", what, err, status, msg)
	}
}

// opsUsers makes enclave e with an Admin, a User whose policy allows
// KEY:LISTVERSIONS and CLUSTER:STATUS on "a*", and returns their clients.
func opsUsers(t *testing.T, s *stack, e string) (admin, user *client.Client) {
	t.Helper()
	root := s.client("")
	mustOK(t, root.CreateEnclave(ctx, e))
	adminKey, adminID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, e, &wire.CreateIdentityRequest{Identity: adminID, Privilege: "Admin"}))
	userKey, userID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, e, &wire.CreateIdentityRequest{Identity: userID}))
	mustOK(t, root.CreatePolicy(ctx, e, &wire.CreatePolicyRequest{Name: "p",
		Allow: map[string][]string{"KEY:LISTVERSIONS": {"a*"}, "CLUSTER:STATUS": {"*"}}}))
	mustOK(t, root.AssignPolicy(ctx, e, userID, "p"))
	return s.client(adminKey), s.client(userKey)
}

// TestClusterStatus: a single node reports itself, up, as its own
// leader, with the events it applied; only root may ask.
func TestClusterStatus(t *testing.T) {
	s := newStack(t)
	admin, user := opsUsers(t, s, "e1")
	st, err := s.client("").ClusterStatus(ctx)
	mustOK(t, err)
	if len(st.NodesUp) != 1 || len(st.NodesDown) != 0 {
		t.Fatalf("ClusterStatus: %d up, %d down, want 1 and 0", len(st.NodesUp), len(st.NodesDown))
	}
	n, ok := st.NodesUp[0]
	if !ok {
		t.Fatalf("ClusterStatus: nodes up %v, want node 0", st.NodesUp)
	}
	if n.Role != "Leader" || n.LeaderID != 0 || n.ID != 0 || n.Host == "" || n.Nodes[0] != n.Host || n.APIVersion != "v1" {
		t.Fatalf("node 0 = %+v, want the leader of itself, with its host in Nodes", n)
	}
	if n.Commit != s.Proj.Seq() || n.Commit == 0 || n.CPUs == 0 || n.HeapMemInUse == 0 || n.OS == "" {
		t.Fatalf("node 0 = %+v, want commit %d and the runtime figures", n, s.Proj.Seq())
	}
	rnd, _ := newIdentity(t)
	for name, c := range map[string]*client.Client{"Admin": admin, "User allowed CLUSTER:STATUS": user, "unknown identity": s.client(rnd)} {
		_, err := c.ClusterStatus(ctx)
		wantStatus(t, "ClusterStatus as "+name, err, http.StatusForbidden, "")
	}
}

// TestClusterMembership: nodes join by configuration, so ADDNODE and
// EDIT answer 409 to root, REMOVENODE on a single node 409 "not part of a
// cluster", and all three 403 to anybody else.
func TestClusterMembership(t *testing.T) {
	s := newStack(t)
	admin, _ := opsUsers(t, s, "e1")
	before := s.stateJSON()
	frames := map[string]wire.Frame{
		"ADDNODE":    {Cmd: wire.CmdClusterAddNode, Body: (&wire.AddClusterNodeRequest{Host: "10.0.0.9:7373"}).MarshalProto()},
		"REMOVENODE": {Cmd: wire.CmdClusterRemoveNode, Body: (&wire.RemoveClusterNodeRequest{Host: "10.0.0.9:7373"}).MarshalProto()},
		"EDIT":       {Cmd: wire.CmdClusterEdit, Body: (&wire.EditClusterRequest{Host: s.addr, RemoveIDs: []uint32{3}}).MarshalProto()},
	}
	for name, f := range frames {
		_, err := s.client("").Send(ctx, "", []wire.Frame{f})
		want := "configuration"
		if name == "REMOVENODE" {
			want = "not part of a cluster"
		}
		wantStatus(t, name+" as root", err, http.StatusConflict, want)
		_, err = admin.Send(ctx, "", []wire.Frame{f})
		wantStatus(t, name+" as Admin", err, http.StatusForbidden, "")
	}
	_, err := s.client("").Send(ctx, "", []wire.Frame{frames["ADDNODE"], frames["EDIT"]})
	wantStatus(t, "two cluster frames", err, http.StatusBadRequest, "only frame")
	_, err = s.client("").Send(ctx, "", []wire.Frame{{Cmd: wire.CmdClusterAddNode, Body: []byte{0x0a, 0x05, 'a'}}})
	wantStatus(t, "truncated ADDNODE", err, http.StatusBadRequest, "malformed")
	if s.stateJSON() != before {
		t.Fatal("cluster membership commands changed the state")
	}
}

// TestKeyListVersions: the live versions of a key, oldest first, paged;
// policies allow it per key name like the other key reads.
func TestKeyListVersions(t *testing.T) {
	s := newStack(t)
	admin, user := opsUsers(t, s, "e1")
	root := s.client("")
	mustOK(t, root.CreateKey(ctx, "e1", "a1", "", false))
	mustOK(t, root.CreateKey(ctx, "e1", "a1", "", true)) // version 2
	mustOK(t, root.CreateKey(ctx, "e1", "a1", "", true)) // version 3
	mustOK(t, root.DeleteKey(ctx, "e1", "a1", 2, false))
	mustOK(t, root.CreateKey(ctx, "e1", "b1", "", false))

	versions := func(r *wire.ListKeysResponse) (vs []uint32) {
		for _, k := range r.Keys {
			if k.Name != "a1" || k.CreatedBy != s.RootID || k.CreatedAt.IsZero() {
				t.Fatalf("version %+v: want key a1 created by root", k)
			}
			vs = append(vs, k.Version)
		}
		return vs
	}
	all, err := user.ListKeyVersions(ctx, "e1", "a1", 0, 0)
	mustOK(t, err)
	if got := versions(all); len(got) != 2 || got[0] != 1 || got[1] != 3 || all.ContinueAt != "" {
		t.Fatalf("versions of a1 = %v (next %q), want [1 3] and no next page", got, all.ContinueAt)
	}
	page, err := admin.ListKeyVersions(ctx, "e1", "a1", 0, 1)
	mustOK(t, err)
	if got := versions(page); len(got) != 1 || got[0] != 1 || page.ContinueAt != "3" {
		t.Fatalf("first page = %v (next %q), want [1] and next 3", got, page.ContinueAt)
	}
	page, err = admin.ListKeyVersions(ctx, "e1", "a1", 3, 1)
	mustOK(t, err)
	if got := versions(page); len(got) != 1 || got[0] != 3 || page.ContinueAt != "" {
		t.Fatalf("second page = %v (next %q), want [3] and the end", got, page.ContinueAt)
	}

	_, err = user.ListKeyVersions(ctx, "e1", "b1", 0, 0)
	wantStatus(t, "User not allowed b1", err, http.StatusForbidden, "")
	_, err = root.ListKeyVersions(ctx, "e1", "a9", 0, 0)
	wantStatus(t, "unknown key", err, http.StatusNotFound, "key does not exist")
	otherKey, otherID := newIdentity(t)
	mustOK(t, root.CreateEnclave(ctx, "e2"))
	mustOK(t, root.CreateIdentity(ctx, "e2", &wire.CreateIdentityRequest{Identity: otherID, Privilege: "Admin"}))
	_, err = s.client(otherKey).ListKeyVersions(ctx, "e1", "a1", 0, 0)
	wantStatus(t, "Admin of another enclave", err, http.StatusForbidden, "")
	bad := (&wire.ListRequest{Prefix: "a1", ContinueAt: "two"}).MarshalProto()
	_, err = root.Send(ctx, "e1", []wire.Frame{{Cmd: wire.CmdKeyListVersions, Body: bad}})
	wantStatus(t, "continue_at not a number", err, http.StatusBadRequest, "continue_at")
}

// TestClusterHSMCommands: CLUSTER:ADDHSM seals the REK under a
// configured HSM (Overwrite accepts one that holds a sealing already),
// CLUSTER:REMOVEHSM removes a sealing but never the last; root only.
func TestClusterHSMCommands(t *testing.T) {
	second, err := softkey.Generate(rand.Reader)
	mustOK(t, err)
	w, err := softkey.Parse(second)
	mustOK(t, err)
	n := nodetest.Start(t, nodetest.Options{Configure: func(c *api.Config) {
		c.HSMs = append(c.HSMs, commands.NamedHSM{Name: "second", Kind: ledger.HSMKindSoft, W: w})
	}})
	s := fromNode(t, n)
	admin, _ := opsUsers(t, s, "e1")
	root := s.client("")
	sealed := func() map[string]bool {
		hs, err := root.ListHSMs(ctx)
		mustOK(t, err)
		out := map[string]bool{}
		for _, h := range hs {
			out[h.Name] = h.Sealed
		}
		return out
	}
	wantStatus(t, "ADDHSM as Admin", admin.ClusterAddHSM(ctx, "second", false), http.StatusForbidden, "")
	wantStatus(t, "ADDHSM of an HSM not configured", root.ClusterAddHSM(ctx, "third", false), http.StatusNotFound, "no HSM named third")
	if sealed()["second"] {
		t.Fatal("refused ADDHSM sealed the REK under second")
	}
	mustOK(t, root.ClusterAddHSM(ctx, "second", false))
	if got := sealed(); !got["second"] || !got["soft"] {
		t.Fatalf("after ADDHSM sealings = %v, want soft and second", got)
	}
	wantStatus(t, "ADDHSM again", root.ClusterAddHSM(ctx, "second", false), http.StatusConflict, "")
	mustOK(t, root.ClusterAddHSM(ctx, "second", true))

	wantStatus(t, "REMOVEHSM as Admin", admin.ClusterRemoveHSM(ctx, "second"), http.StatusForbidden, "")
	mustOK(t, root.ClusterRemoveHSM(ctx, "second"))
	if got := sealed(); got["second"] || !got["soft"] {
		t.Fatalf("after REMOVEHSM sealings = %v, want soft only", got)
	}
	wantStatus(t, "REMOVEHSM of no sealing", root.ClusterRemoveHSM(ctx, "second"), http.StatusNotFound, "")
	if err := root.ClusterRemoveHSM(ctx, "soft"); err == nil {
		t.Fatal("REMOVEHSM of the last sealing succeeded, want refused")
	}
	if got := sealed(); !got["soft"] {
		t.Fatalf("after refused REMOVEHSM sealings = %v, want soft kept", got)
	}
	// A node restarted on the HSM added back opens the ledger.
	mustOK(t, root.ClusterAddHSM(ctx, "second", false))
	n.Stop()
	nodetest.Start(t, nodetest.Options{Dir: n.Dir, HSMKey: second})
}

// TestRestart: POST /v1/debug/restart answers, then hands ?self to the
// node's restart; root only; bad queries change nothing; a server that
// cannot restart says so.
func TestRestart(t *testing.T) {
	calls := make(chan bool, 4)
	n := nodetest.Start(t, nodetest.Options{Configure: func(c *api.Config) { c.Restart = func(self bool) { calls <- self } }})
	s := fromNode(t, n)
	admin, _ := opsUsers(t, s, "e1")
	root := s.client("")
	mustOK(t, root.Restart(ctx, true))
	if self := <-calls; !self {
		t.Fatal("restart ?self: hook got self=false")
	}
	mustOK(t, root.Restart(ctx, false))
	if self := <-calls; self {
		t.Fatal("restart: hook got self=true")
	}
	wantStatus(t, "restart as Admin", admin.Restart(ctx, true), http.StatusForbidden, "")
	rnd, _ := newIdentity(t)
	wantStatus(t, "restart as unknown identity", s.client(rnd).Restart(ctx, true), http.StatusForbidden, "")
	select {
	case self := <-calls:
		t.Fatalf("refused restart called the hook (self=%v)", self)
	default:
	}

	plain := newStack(t)
	wantStatus(t, "restart without a hook", plain.client("").Restart(ctx, true), http.StatusServiceUnavailable, "cannot restart")
}
