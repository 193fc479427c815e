package interop

import (
	"maps"
	"slices"
	"testing"
	"time"

	"aead.dev/mtls"
	"github.com/minio/kms-go/kms"
)

// TestIdentities covers commands 401-404 (IDENTITY:CREATE, DELETE, STATUS,
// LIST).
func TestIdentities(t *testing.T) {
	g := newGroup(t, "identities")
	enc := newEnclave(t, "identities")
	start := time.Now()
	user, admin, plain := newKey(t).Identity(), newKey(t).Identity(), newKey(t).Identity()
	tags := map[string]string{"team": "storage", "env": "test"}

	g.run("CreateIdentity User and Admin", func(t *testing.T) {
		noErr(t, "CreateIdentity User", env.Root.CreateIdentity(ctx(t), enc, &kms.CreateIdentityRequest{Identity: user, Privilege: kms.User, Tags: tags}))
		noErr(t, "CreateIdentity Admin", env.Root.CreateIdentity(ctx(t), enc, &kms.CreateIdentityRequest{Identity: admin, Privilege: kms.Admin}))
	})
	g.run("GetIdentity batch answers in order with privileges and tags", func(t *testing.T) {
		resp, err := env.Root.GetIdentity(ctx(t), enc, &kms.IdentityRequest{Identity: admin}, &kms.IdentityRequest{Identity: user})
		noErr(t, "GetIdentity", err)
		if len(resp) != 2 {
			t.Fatalf("got %d responses, want 2", len(resp))
		}
		a, u := resp[0], resp[1]
		if a.Identity != admin || a.Privilege != kms.Admin {
			t.Errorf("first = %v %v, want %v Admin", a.Identity, a.Privilege, admin)
		}
		if u.Identity != user || u.Privilege != kms.User {
			t.Errorf("second = %v %v, want %v User", u.Identity, u.Privilege, user)
		}
		if !maps.Equal(u.Tags, tags) {
			t.Errorf("Tags = %v, want %v", u.Tags, tags)
		}
		for _, r := range resp {
			if r.CreatedBy != env.RootKey.Identity() {
				t.Errorf("%v: CreatedBy = %v, want %v", r.Identity, r.CreatedBy, env.RootKey.Identity())
			}
			if r.IsServiceAccount {
				t.Errorf("%v: IsServiceAccount = true, want false", r.Identity)
			}
			checkCreatedAt(t, r.Identity.String(), r.CreatedAt, start)
		}
	})
	g.run("CreateIdentity with empty privilege is User", func(t *testing.T) {
		noErr(t, "CreateIdentity", env.Root.CreateIdentity(ctx(t), enc, &kms.CreateIdentityRequest{Identity: plain}))
		resp, err := env.Root.GetIdentity(ctx(t), enc, &kms.IdentityRequest{Identity: plain})
		noErr(t, "GetIdentity", err)
		if resp[0].Privilege != kms.User {
			t.Fatalf("Privilege = %v, want User", resp[0].Privilege)
		}
	})
	g.run("GetIdentity of unknown identity is ErrIdentityNotFound", func(t *testing.T) {
		_, err := env.Root.GetIdentity(ctx(t), enc, &kms.IdentityRequest{Identity: newKey(t).Identity()})
		wantErr(t, err, kms.ErrIdentityNotFound)
	})
	g.run("ListIdentities pages through all identities sorted", func(t *testing.T) {
		names := listAll(t, env.Root.ListIdentities, &kms.ListRequest{Enclave: enc, Limit: 1},
			func(r kms.IdentityResponse) string { return r.Identity.String() })
		for _, id := range []mtls.Identity{user, admin, plain} {
			if !slices.Contains(names, id.String()) {
				t.Errorf("identity %v missing from listing %v", id, names)
			}
		}
		checkSortedUnique(t, names)
	})
	g.run("ListIdentities with prefix", func(t *testing.T) {
		prefix := user.String()[:10]
		names := listAll(t, env.Root.ListIdentities, &kms.ListRequest{Enclave: enc, Prefix: prefix},
			func(r kms.IdentityResponse) string { return r.Identity.String() })
		if !slices.Contains(names, user.String()) {
			t.Errorf("identity %v missing from prefix listing %v", user, names)
		}
		for _, n := range names {
			if n[:10] != prefix {
				t.Errorf("listed %s outside prefix %s", n, prefix)
			}
		}
	})
	g.run("DeleteIdentity", func(t *testing.T) {
		noErr(t, "DeleteIdentity", env.Root.DeleteIdentity(ctx(t), enc, &kms.DeleteIdentityRequest{Identity: user}))
	})
	g.run("GetIdentity after delete is ErrIdentityNotFound", func(t *testing.T) {
		_, err := env.Root.GetIdentity(ctx(t), enc, &kms.IdentityRequest{Identity: user})
		wantErr(t, err, kms.ErrIdentityNotFound)
	})
	g.run("DeleteIdentity again is ErrIdentityNotFound", func(t *testing.T) {
		err := env.Root.DeleteIdentity(ctx(t), enc, &kms.DeleteIdentityRequest{Identity: user})
		wantErr(t, err, kms.ErrIdentityNotFound)
	})
	g.run("deleted identity is not listed", func(t *testing.T) {
		names := listAll(t, env.Root.ListIdentities, &kms.ListRequest{Enclave: enc},
			func(r kms.IdentityResponse) string { return r.Identity.String() })
		if slices.Contains(names, user.String()) {
			t.Fatalf("deleted identity %v still listed", user)
		}
	})
}
