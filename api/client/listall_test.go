package client

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/api/wire"
)

// pagedNames answers the LIST commands with names, two per page, from
// the request's ContinueAt and filtered by its Prefix; stuck makes every
// page continue at the same name.
func pagedNames(names []string, stuck bool) answer {
	return func(f wire.Frame) ([]byte, *Error) {
		var req wire.ListRequest
		if err := req.UnmarshalProto(f.Body); err != nil {
			return nil, &Error{Status: 400, Message: "bad list request"}
		}
		var page []string
		i := sort.SearchStrings(names, req.ContinueAt)
		for ; i < len(names) && len(page) < 2; i++ {
			if strings.HasPrefix(names[i], req.Prefix) {
				page = append(page, names[i])
			}
		}
		next := ""
		if i < len(names) {
			next = names[i]
		}
		if stuck {
			next = names[0]
		}
		switch f.Cmd {
		case wire.CmdEnclaveList:
			r := &wire.ListEnclavesResponse{ContinueAt: next}
			for _, n := range page {
				r.Enclaves = append(r.Enclaves, wire.EnclaveStatusResponse{Name: n})
			}
			return r.MarshalProto(), nil
		case wire.CmdIdentityList:
			r := &wire.ListIdentitiesResponse{ContinueAt: next}
			for _, n := range page {
				r.Identities = append(r.Identities, wire.IdentityResponse{Identity: n})
			}
			return r.MarshalProto(), nil
		case wire.CmdPolicyList:
			r := &wire.ListPoliciesResponse{ContinueAt: next}
			for _, n := range page {
				r.Policies = append(r.Policies, wire.PolicyStatusResponse{Name: n})
			}
			return r.MarshalProto(), nil
		}
		return nil, &Error{Status: 400, Message: "unexpected command"}
	}
}

// TestListAllPages: AllEnclaves, AllIdentities and AllPolicies follow
// the continuation to the end, one request per page, keeping the prefix.
func TestListAllPages(t *testing.T) {
	t.Parallel()
	names := []string{"a1", "a2", "a3", "a4", "a5"}
	ts := newTestServer(t, pagedNames(names, false))
	c := newClient(t, testAPIKey, ts.Server)
	ctx := context.Background()
	list := map[string]func() ([]string, error){
		"AllEnclaves": func() ([]string, error) {
			l, err := c.AllEnclaves(ctx, "a")
			return mapNames(l, func(e wire.EnclaveStatusResponse) string { return e.Name }), err
		},
		"AllIdentities": func() ([]string, error) {
			l, err := c.AllIdentities(ctx, "e", "a")
			return mapNames(l, func(i wire.IdentityResponse) string { return i.Identity }), err
		},
		"AllPolicies": func() ([]string, error) {
			l, err := c.AllPolicies(ctx, "e", "a")
			return mapNames(l, func(p wire.PolicyStatusResponse) string { return p.Name }), err
		},
	}
	for name, fn := range list {
		before := ts.count()
		got, err := fn()
		if err != nil || !reflect.DeepEqual(got, names) {
			t.Errorf("%s = %q, %v; want %q", name, got, err, names)
		}
		if n := ts.count() - before; n != 3 {
			t.Errorf("%s made %d requests, want 3 (pages of two)", name, n)
		}
		var req wire.ListRequest
		if err := req.UnmarshalProto(ts.last(t).frames[0].Body); err != nil || req.Prefix != "a" || req.ContinueAt != "a5" {
			t.Errorf("%s: last request %+v, %v; want prefix a, continue at a5", name, req, err)
		}
	}
}

// TestListAllHostileServer: a server that never advances its listing,
// or fails mid-way, ends the listing with an error and no items.
func TestListAllHostileServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stuck := newTestServer(t, pagedNames([]string{"a", "b", "c"}, true))
	if l, err := newClient(t, testAPIKey, stuck.Server).AllEnclaves(ctx, ""); err == nil || !strings.Contains(err.Error(), "does not advance") || l != nil {
		t.Errorf("stuck listing = %v, %v; want a does-not-advance error", l, err)
	}
	if n := stuck.count(); n != 2 {
		t.Errorf("stuck listing made %d requests, want 2", n)
	}

	pages := pagedNames([]string{"a", "b", "c"}, false)
	failing := newTestServer(t, func(f wire.Frame) ([]byte, *Error) {
		var req wire.ListRequest
		if req.UnmarshalProto(f.Body) == nil && req.ContinueAt != "" {
			return nil, ErrPermission
		}
		return pages(f)
	})
	if l, err := newClient(t, testAPIKey, failing.Server).AllPolicies(ctx, "e", ""); !errors.Is(err, ErrPermission) || l != nil {
		t.Errorf("listing failing on page 2 = %v, %v; want ErrPermission", l, err)
	}
}

func mapNames[T any](items []T, name func(T) string) []string {
	var out []string
	for _, it := range items {
		out = append(out, name(it))
	}
	return out
}
