package interop

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/minio/kms-go/kms"
	"github.com/minio/kms-go/kms/cmds"
)

// TestPolicies covers commands 301-306 (POLICY:CREATE, DELETE, ASSIGN, GET,
// STATUS, LIST).
func TestPolicies(t *testing.T) {
	g := newGroup(t, "policies")
	enc := newEnclave(t, "policies")
	start := time.Now()
	allow := map[cmds.Command]kms.RuleSet{
		cmds.KeyGenerate: {"minio-*": {}},
		cmds.KeyDecrypt:  {"minio-*": {}, "shared": {}},
	}
	deny := map[cmds.Command]kms.RuleSet{
		cmds.KeyGenerate: {"minio-secret": {}},
	}

	g.run("CreatePolicy", func(t *testing.T) {
		for _, name := range []string{"p-minio", "p-other", "q-unrelated"} {
			err := env.Root.CreatePolicy(ctx(t), enc, &kms.CreatePolicyRequest{Name: name, Allow: allow, Deny: deny})
			noErr(t, "CreatePolicy("+name+")", err)
		}
	})
	g.run("GetPolicy returns the rules", func(t *testing.T) {
		resp, err := env.Root.GetPolicy(ctx(t), enc, &kms.PolicyRequest{Name: "p-minio"})
		noErr(t, "GetPolicy", err)
		p := resp[0]
		if p.Name != "p-minio" {
			t.Errorf("Name = %q, want p-minio", p.Name)
		}
		if !equalRules(p.Allow, allow) || !equalRules(p.Deny, deny) {
			t.Errorf("got allow %v deny %v, want allow %v deny %v", p.Allow, p.Deny, allow, deny)
		}
		if p.CreatedBy != env.RootKey.Identity() {
			t.Errorf("CreatedBy = %v, want %v", p.CreatedBy, env.RootKey.Identity())
		}
		checkCreatedAt(t, p.Name, p.CreatedAt, start)
	})
	g.run("GetPolicy batch answers in order", func(t *testing.T) {
		resp, err := env.Root.GetPolicy(ctx(t), enc, &kms.PolicyRequest{Name: "p-other"}, &kms.PolicyRequest{Name: "p-minio"})
		noErr(t, "GetPolicy", err)
		if len(resp) != 2 || resp[0].Name != "p-other" || resp[1].Name != "p-minio" {
			t.Fatalf("got %d responses, want p-other then p-minio", len(resp))
		}
	})
	g.run("CreatePolicy overwrites", func(t *testing.T) {
		replaced := map[cmds.Command]kms.RuleSet{cmds.KeyList: {"*": {}}}
		noErr(t, "CreatePolicy", env.Root.CreatePolicy(ctx(t), enc, &kms.CreatePolicyRequest{Name: "p-other", Allow: replaced}))
		resp, err := env.Root.GetPolicy(ctx(t), enc, &kms.PolicyRequest{Name: "p-other"})
		noErr(t, "GetPolicy", err)
		if !equalRules(resp[0].Allow, replaced) || len(resp[0].Deny) != 0 {
			t.Fatalf("got allow %v deny %v, want allow %v and no deny", resp[0].Allow, resp[0].Deny, replaced)
		}
	})
	g.run("PolicyStatus batch", func(t *testing.T) {
		resp, err := env.Root.PolicyStatus(ctx(t), enc, &kms.PolicyRequest{Name: "p-minio"}, &kms.PolicyRequest{Name: "q-unrelated"})
		noErr(t, "PolicyStatus", err)
		if len(resp) != 2 || resp[0].Name != "p-minio" || resp[1].Name != "q-unrelated" {
			t.Fatalf("got %d responses, want p-minio then q-unrelated", len(resp))
		}
		for _, r := range resp {
			if r.CreatedBy != env.RootKey.Identity() {
				t.Errorf("%s: CreatedBy = %v, want %v", r.Name, r.CreatedBy, env.RootKey.Identity())
			}
			checkCreatedAt(t, r.Name, r.CreatedAt, start)
		}
	})
	g.run("ListPolicies pages and filters by prefix", func(t *testing.T) {
		all := listAll(t, env.Root.ListPolicies, &kms.ListRequest{Enclave: enc, Limit: 1},
			func(p kms.PolicyStatusResponse) string { return p.Name })
		if !slices.Equal(all, []string{"p-minio", "p-other", "q-unrelated"}) {
			t.Errorf("listed %v, want [p-minio p-other q-unrelated]", all)
		}
		prefixed := listAll(t, env.Root.ListPolicies, &kms.ListRequest{Enclave: enc, Prefix: "p-"},
			func(p kms.PolicyStatusResponse) string { return p.Name })
		if !slices.Equal(prefixed, []string{"p-minio", "p-other"}) {
			t.Errorf("listed %v with prefix p-, want [p-minio p-other]", prefixed)
		}
	})
	g.run("AssignPolicy shows in GetIdentity", func(t *testing.T) {
		id := newKey(t).Identity()
		noErr(t, "CreateIdentity", env.Root.CreateIdentity(ctx(t), enc, &kms.CreateIdentityRequest{Identity: id, Privilege: kms.User}))
		noErr(t, "AssignPolicy", env.Root.AssignPolicy(ctx(t), enc, &kms.AssignPolicyRequest{Identity: id, Policy: "p-minio"}))
		resp, err := env.Root.GetIdentity(ctx(t), enc, &kms.IdentityRequest{Identity: id})
		noErr(t, "GetIdentity", err)
		if resp[0].Policy != "p-minio" {
			t.Fatalf("Policy = %q, want p-minio", resp[0].Policy)
		}
	})
	g.run("AssignPolicy of unknown policy is ErrPolicyNotFound", func(t *testing.T) {
		id := newKey(t).Identity()
		noErr(t, "CreateIdentity", env.Root.CreateIdentity(ctx(t), enc, &kms.CreateIdentityRequest{Identity: id, Privilege: kms.User}))
		err := env.Root.AssignPolicy(ctx(t), enc, &kms.AssignPolicyRequest{Identity: id, Policy: "no-such-policy"})
		wantErr(t, err, kms.ErrPolicyNotFound)
	})
	g.run("DeletePolicy", func(t *testing.T) {
		noErr(t, "DeletePolicy", env.Root.DeletePolicy(ctx(t), enc, &kms.DeletePolicyRequest{Name: "q-unrelated"}))
	})
	g.run("GetPolicy after delete is ErrPolicyNotFound", func(t *testing.T) {
		_, err := env.Root.GetPolicy(ctx(t), enc, &kms.PolicyRequest{Name: "q-unrelated"})
		wantErr(t, err, kms.ErrPolicyNotFound)
	})
	g.run("PolicyStatus after delete is ErrPolicyNotFound", func(t *testing.T) {
		_, err := env.Root.PolicyStatus(ctx(t), enc, &kms.PolicyRequest{Name: "q-unrelated"})
		wantErr(t, err, kms.ErrPolicyNotFound)
	})
	g.run("DeletePolicy again is ErrPolicyNotFound", func(t *testing.T) {
		err := env.Root.DeletePolicy(ctx(t), enc, &kms.DeletePolicyRequest{Name: "q-unrelated"})
		wantErr(t, err, kms.ErrPolicyNotFound)
	})
	g.run("deleted policy is not listed", func(t *testing.T) {
		names := listAll(t, env.Root.ListPolicies, &kms.ListRequest{Enclave: enc},
			func(p kms.PolicyStatusResponse) string { return p.Name })
		if slices.Contains(names, "q-unrelated") {
			t.Fatalf("deleted policy still listed in %v", names)
		}
	})
}

// equalRules reports whether two policy rule maps hold the same patterns.
func equalRules(a, b map[cmds.Command]kms.RuleSet) bool {
	return maps.EqualFunc(a, b, func(x, y kms.RuleSet) bool {
		return maps.Equal(x, y)
	})
}
