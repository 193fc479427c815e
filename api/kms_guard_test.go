package api_test

import (
	"errors"
	"testing"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
)

// A User allowed IDENTITY:CREATE, IDENTITY:DELETE and POLICY:ASSIGN may
// manage Users, not identities it does not outrank: Admins and the
// service accounts of an Admin or of root are Admin-class.
func TestUserCannotTouchAdminClassIdentities(t *testing.T) {
	s := newStack(t)
	root := s.client("")
	mustOK(t, root.CreateEnclave(ctx, "e"))
	adminKey, adminID := newIdentity(t)
	_, saAdminID := newIdentity(t)
	_, saRootID := newIdentity(t)
	userKey, userID := newIdentity(t)
	_, otherID := newIdentity(t)
	_, newID := newIdentity(t)
	_, saUserID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: adminID, Privilege: "Admin"}))
	mustOK(t, s.client(adminKey).CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: saAdminID, IsServiceAccount: true}))
	mustOK(t, root.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: saRootID, IsServiceAccount: true}))
	mustOK(t, root.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: userID}))
	mustOK(t, root.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: otherID}))
	mustOK(t, root.CreatePolicy(ctx, "e", &wire.CreatePolicyRequest{Name: "idm",
		Allow: map[string][]string{"IDENTITY:CREATE": {"*"}, "IDENTITY:DELETE": {"*"}, "POLICY:ASSIGN": {"*"}}}))
	mustOK(t, root.AssignPolicy(ctx, "e", userID, "idm"))
	user := s.client(userKey)

	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"DeleteAdmin", func() error { return user.DeleteIdentity(ctx, "e", adminID) }},
		{"DeleteServiceAccountOfAdmin", func() error { return user.DeleteIdentity(ctx, "e", saAdminID) }},
		{"DeleteServiceAccountOfRoot", func() error { return user.DeleteIdentity(ctx, "e", saRootID) }},
		{"DeleteRoot", func() error { return user.DeleteIdentity(ctx, "e", s.RootID) }},
		{"ReparentServiceAccountOfAdmin", func() error {
			return user.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: saAdminID, IsServiceAccount: true})
		}},
		{"OverwriteServiceAccountOfRoot", func() error {
			return user.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: saRootID})
		}},
		{"OverwriteAdmin", func() error { return user.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: adminID}) }},
		{"MakeAdmin", func() error {
			return user.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: newID, Privilege: "admin"})
		}},
		{"AssignPolicyToServiceAccountOfAdmin", func() error { return user.AssignPolicy(ctx, "e", saAdminID, "idm") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.snapshot()
			if err := tc.call(); !errors.Is(err, client.ErrPermission) {
				t.Fatalf("err = %v, want 403", err)
			}
			s.mustBeUnchanged(before)
		})
	}
	for _, id := range []string{adminID, saAdminID, saRootID} {
		if _, err := root.GetIdentity(ctx, "e", id); err != nil {
			t.Fatalf("GetIdentity(%s) err = %v, want it untouched", id, err)
		}
	}
	if sa, err := root.GetIdentity(ctx, "e", saAdminID); err != nil || !sa.IsServiceAccount {
		t.Fatalf("service account of the Admin = (%+v, %v)", sa, err)
	}
	if a, err := root.GetIdentity(ctx, "e", adminID); err != nil || len(a.ServiceAccounts) != 1 || a.ServiceAccounts[0] != saAdminID {
		t.Fatalf("Admin's service accounts = (%+v, %v), want [%s]", a, err, saAdminID)
	}

	// Users' identities stay manageable.
	mustOK(t, user.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: newID}))
	mustOK(t, user.AssignPolicy(ctx, "e", newID, "idm"))
	mustOK(t, user.DeleteIdentity(ctx, "e", newID))
	mustOK(t, user.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: saUserID, IsServiceAccount: true}))
	mustOK(t, user.DeleteIdentity(ctx, "e", saUserID))
	mustOK(t, user.DeleteIdentity(ctx, "e", otherID))
	// The Admin and root still manage everything.
	mustOK(t, s.client(adminKey).DeleteIdentity(ctx, "e", saAdminID))
	mustOK(t, root.DeleteIdentity(ctx, "e", saRootID))
}
