package api_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
)

// authWorld is the setting of TestAuthorization: enclaves a and b with
// keys minio-a and other; in a, an Admin, a User with policy minio
// (generate and decrypt minio-*, decrypt other but denied, list), a User
// without policy; and a stranger known nowhere.
type authWorld struct {
	s                                  *stack
	root, admin, user, nopol, stranger *client.Client
	adminID, nopolID                   string
	otherCiphertext                    []byte // of key other in a
}

func newAuthWorld(t *testing.T) *authWorld {
	t.Helper()
	s := newStack(t)
	root := s.client("")
	for _, e := range []string{"a", "b"} {
		mustOK(t, root.CreateEnclave(ctx, e))
		mustOK(t, root.CreateKey(ctx, e, "minio-a", "", false))
		mustOK(t, root.CreateKey(ctx, e, "other", "", false))
	}
	adminKey, adminID := newIdentity(t)
	userKey, userID := newIdentity(t)
	nopolKey, nopolID := newIdentity(t)
	strangerKey, _ := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "a", &wire.CreateIdentityRequest{Identity: adminID, Privilege: "Admin"}))
	mustOK(t, root.CreateIdentity(ctx, "a", &wire.CreateIdentityRequest{Identity: userID}))
	mustOK(t, root.CreateIdentity(ctx, "a", &wire.CreateIdentityRequest{Identity: nopolID}))
	mustOK(t, root.CreatePolicy(ctx, "a", &wire.CreatePolicyRequest{
		Name:  "minio",
		Allow: map[string][]string{"KEY:GENERATE": {"minio-*"}, "KEY:DECRYPT": {"minio-*", "other"}, "KEY:LIST": {"*"}},
		Deny:  map[string][]string{"KEY:DECRYPT": {"other"}},
	}))
	mustOK(t, root.AssignPolicy(ctx, "a", userID, "minio"))

	g, err := root.GenerateKey(ctx, "a", "other", 0, nil, 0)
	mustOK(t, err)
	return &authWorld{s: s, root: root, admin: s.client(adminKey), user: s.client(userKey), nopol: s.client(nopolKey),
		stranger: s.client(strangerKey), adminID: adminID, nopolID: nopolID, otherCiphertext: g.Ciphertext}

}

func TestAuthorization(t *testing.T) {
	w := newAuthWorld(t)
	root, admin, user, nopol, stranger, nopolID := w.root, w.admin, w.user, w.nopol, w.stranger, w.nopolID
	tests := []struct {
		name string
		call func() error
		want error // nil = allowed
	}{
		{"UserGenerateAllowed", func() error { _, err := user.GenerateKey(ctx, "a", "minio-a", 0, nil, 0); return err }, nil},
		{"UserGenerateOtherKey", func() error { _, err := user.GenerateKey(ctx, "a", "other", 0, nil, 0); return err }, client.ErrPermission},
		{"UserDecryptDenyWins", func() error { _, err := user.Decrypt(ctx, "a", "other", 0, w.otherCiphertext, nil); return err }, client.ErrPermission},
		{"UserListAllowed", func() error { _, err := user.ListKeys(ctx, "a", "", "", 0); return err }, nil},
		{"UserCreateDenied", func() error { return user.CreateKey(ctx, "a", "minio-new", "", false) }, client.ErrPermission},
		{"UserOtherEnclave", func() error { _, err := user.GenerateKey(ctx, "b", "minio-a", 0, nil, 0); return err }, client.ErrPermission},
		{"UserNoPolicy", func() error { _, err := nopol.GenerateKey(ctx, "a", "minio-a", 0, nil, 0); return err }, client.ErrPermission},
		{"UserCannotCreateAdmin", func() error {
			return user.CreateIdentity(ctx, "a", &wire.CreateIdentityRequest{Identity: nopolID, Privilege: "Admin"})
		}, client.ErrPermission},
		{"StrangerDenied", func() error { _, err := stranger.GenerateKey(ctx, "a", "minio-a", 0, nil, 0); return err }, client.ErrPermission},
		{"StrangerNoEnclaveLeak", func() error { _, err := stranger.GenerateKey(ctx, "nope", "minio-a", 0, nil, 0); return err }, client.ErrPermission},
		{"AdminAllInEnclave", func() error { return admin.CreateKey(ctx, "a", "admin-key", "ChaCha20", false) }, nil},
		{"AdminManagesPolicies", func() error {
			return admin.CreatePolicy(ctx, "a", &wire.CreatePolicyRequest{Name: "p2", Allow: map[string][]string{"KEY:STATUS": {"*"}}})
		}, nil},
		{"AdminOtherEnclave", func() error { return admin.CreateKey(ctx, "b", "x", "", false) }, client.ErrPermission},
		{"AdminCannotCreateEnclave", func() error { return admin.CreateEnclave(ctx, "c") }, client.ErrPermission},
		{"AdminCannotListEnclaves", func() error { _, err := admin.ListEnclaves(ctx, "", "", 0); return err }, client.ErrPermission},
		{"AdminCannotDeleteEnclave", func() error { return admin.DeleteEnclave(ctx, "a") }, client.ErrPermission},
		{"RootEverywhere", func() error { return root.CreateKey(ctx, "b", "root-key", "", false) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if tt.want == nil && err != nil {
				t.Fatalf("err = %v, want allowed", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("Revocation", func(t *testing.T) { checkRevocation(t, w) })
}

// checkRevocation: a service account has its parent's rights and goes
// with it; deleting a policy revokes its users' rights.
func checkRevocation(t *testing.T, w *authWorld) {
	s, root, admin, user, adminID := w.s, w.root, w.admin, w.user, w.adminID
	saKey, saID := newIdentity(t)
	mustOK(t, admin.CreateIdentity(ctx, "a", &wire.CreateIdentityRequest{Identity: saID, IsServiceAccount: true}))
	sa := s.client(saKey)
	if err := sa.CreateKey(ctx, "a", "sa-key", "", false); err != nil {
		t.Fatalf("service account of an admin: CreateKey err = %v", err)
	}
	id, err := root.GetIdentity(ctx, "a", adminID)
	mustOK(t, err)
	if !slices.Contains(id.ServiceAccounts, saID) || id.Privilege != 2 {
		t.Fatalf("GetIdentity(admin) = %+v, want Admin with the service account", id)
	}
	mustOK(t, root.DeleteIdentity(ctx, "a", adminID))
	if err := sa.CreateKey(ctx, "a", "sa-key2", "", false); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("service account after parent deleted: err = %v, want ErrPermission", err)
	}
	if _, err := root.GetIdentity(ctx, "a", saID); !errors.Is(err, client.ErrIdentityNotFound) {
		t.Fatalf("GetIdentity(service account of deleted parent) err = %v, want ErrIdentityNotFound", err)
	}
	// Deleting the policy revokes the user's rights.
	mustOK(t, root.DeletePolicy(ctx, "a", "minio"))
	if _, err := user.GenerateKey(ctx, "a", "minio-a", 0, nil, 0); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("user after policy deletion: err = %v, want ErrPermission", err)
	}
	if _, err := root.GetPolicy(ctx, "a", "minio"); !errors.Is(err, client.ErrPolicyNotFound) {
		t.Fatalf("GetPolicy(deleted) err = %v, want ErrPolicyNotFound", err)
	}
}

// TestListPages: names sorted, prefix filter, ContinueAt inclusive and
// pointing at the first name of the next page.
func TestListPages(t *testing.T) {
	s := newStack(t)
	c := s.client("")
	mustOK(t, c.CreateEnclave(ctx, "e1"))
	var want []string
	for i := range 25 {
		name := fmt.Sprintf("k-%02d", i)
		want = append(want, name)
		mustOK(t, c.CreateKey(ctx, "e1", name, "", false))
	}
	mustOK(t, c.CreateKey(ctx, "e1", "z-other", "", false))
	var got []string
	next, pages := "", 0
	for {
		r, err := c.ListKeys(ctx, "e1", "k-", next, 10)
		mustOK(t, err)
		pages++
		for _, k := range r.Keys {
			got = append(got, k.Name)
		}
		if next = r.ContinueAt; next == "" {
			break
		}
	}
	if !slices.Equal(got, want) || pages != 3 {
		t.Fatalf("listed %v in %d pages, want %v in 3", got, pages, want)
	}
	r, err := c.ListKeys(ctx, "e1", "k-", "z", 10)
	mustOK(t, err)
	if len(r.Keys) != 0 {
		t.Fatalf("ContinueAt outside the prefix gave %d keys, want 0", len(r.Keys))
	}
	r, err = c.ListKeys(ctx, "e1", "", "", 0)
	mustOK(t, err)
	if len(r.Keys) != 26 || r.ContinueAt != "" {
		t.Fatalf("full list: %d keys, next %q", len(r.Keys), r.ContinueAt)
	}
}

// TestUserCannotTouchAdmins: a User whose policy allows IDENTITY:CREATE
// and IDENTITY:DELETE manages Users, but cannot create, overwrite (demote)
// or delete an Admin.
func TestUserCannotTouchAdmins(t *testing.T) {
	s := newStack(t)
	root := s.client("")
	mustOK(t, root.CreateEnclave(ctx, "a"))
	_, adminID := newIdentity(t)
	userKey, userID := newIdentity(t)
	_, otherID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "a", &wire.CreateIdentityRequest{Identity: adminID, Privilege: "Admin"}))
	mustOK(t, root.CreateIdentity(ctx, "a", &wire.CreateIdentityRequest{Identity: userID}))
	mustOK(t, root.CreatePolicy(ctx, "a", &wire.CreatePolicyRequest{Name: "ids",
		Allow: map[string][]string{"IDENTITY:CREATE": {"*"}, "IDENTITY:DELETE": {"*"}}}))
	mustOK(t, root.AssignPolicy(ctx, "a", userID, "ids"))
	user := s.client(userKey)

	mustOK(t, user.CreateIdentity(ctx, "a", &wire.CreateIdentityRequest{Identity: otherID}))
	mustOK(t, user.DeleteIdentity(ctx, "a", otherID))
	for name, call := range map[string]func() error{
		"CreateAdmin": func() error {
			return user.CreateIdentity(ctx, "a", &wire.CreateIdentityRequest{Identity: otherID, Privilege: "Admin"})
		},
		"DemoteAdmin": func() error { return user.CreateIdentity(ctx, "a", &wire.CreateIdentityRequest{Identity: adminID}) },
		"DeleteAdmin": func() error { return user.DeleteIdentity(ctx, "a", adminID) },
	} {
		if err := call(); !errors.Is(err, client.ErrPermission) {
			t.Errorf("%s by a User err = %v, want ErrPermission", name, err)
		}
	}
	id, err := root.GetIdentity(ctx, "a", adminID)
	mustOK(t, err)
	if id.Privilege != 2 {
		t.Fatalf("the Admin is now privilege %d", id.Privilege)
	}
}
