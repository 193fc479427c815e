package interop

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kms"
)

// TestEnclaves covers commands 101-104 (ENCLAVE:CREATE, DELETE, STATUS, LIST).
func TestEnclaves(t *testing.T) {
	g := newGroup(t, "enclaves")
	start := time.Now()
	a, b := harness.UniqueName("encl-a"), harness.UniqueName("encl-b")

	g.run("CreateEnclave", func(t *testing.T) {
		for _, name := range []string{a, b} {
			noErr(t, "CreateEnclave("+name+")", env.Root.CreateEnclave(ctx(t), &kms.CreateEnclaveRequest{Name: name}))
		}
	})
	g.run("CreateEnclave again is ErrEnclaveExists", func(t *testing.T) {
		err := env.Root.CreateEnclave(ctx(t), &kms.CreateEnclaveRequest{Name: a})
		wantErr(t, err, kms.ErrEnclaveExists)
	})
	g.run("EnclaveStatus batch answers in order", func(t *testing.T) {
		resp, err := env.Root.EnclaveStatus(ctx(t), &kms.EnclaveStatusRequest{Name: b}, &kms.EnclaveStatusRequest{Name: a})
		noErr(t, "EnclaveStatus", err)
		if len(resp) != 2 || resp[0].Name != b || resp[1].Name != a {
			t.Fatalf("got %d responses %v, want [%s %s]", len(resp), enclaveNames(resp), b, a)
		}
		for _, r := range resp {
			if r.CreatedBy != env.RootKey.Identity() {
				t.Errorf("%s: CreatedBy = %v, want %v", r.Name, r.CreatedBy, env.RootKey.Identity())
			}
			checkCreatedAt(t, r.Name, r.CreatedAt, start)
		}
	})
	g.run("EnclaveStatus of unknown enclave is ErrEnclaveNotFound", func(t *testing.T) {
		_, err := env.Root.EnclaveStatus(ctx(t), &kms.EnclaveStatusRequest{Name: harness.UniqueName("nope")})
		wantErr(t, err, kms.ErrEnclaveNotFound)
	})
	g.run("ListEnclaves pages through all enclaves sorted", func(t *testing.T) {
		names := listAll(t, env.Root.ListEnclaves, &kms.ListRequest{Limit: 1}, func(e kms.EnclaveStatusResponse) string { return e.Name })
		for _, want := range []string{a, b, env.Enclave} {
			if !slices.Contains(names, want) {
				t.Errorf("enclave %q missing from listing %v", want, names)
			}
		}
		checkSortedUnique(t, names)
	})
	g.run("ListEnclaves with prefix", func(t *testing.T) {
		page, err := env.Root.ListEnclaves(ctx(t), &kms.ListRequest{Prefix: "encl-a-"})
		noErr(t, "ListEnclaves", err)
		for _, e := range page.Items {
			if !strings.HasPrefix(e.Name, "encl-a-") {
				t.Errorf("listed %q outside prefix encl-a-", e.Name)
			}
		}
		if !slices.Contains(enclaveNames(ptrs(page.Items)), a) {
			t.Errorf("enclave %q missing from prefix listing", a)
		}
	})
	g.run("DeleteEnclave", func(t *testing.T) {
		noErr(t, "DeleteEnclave", env.Root.DeleteEnclave(ctx(t), &kms.DeleteEnclaveRequest{Name: b}))
	})
	g.run("EnclaveStatus after delete is ErrEnclaveNotFound", func(t *testing.T) {
		_, err := env.Root.EnclaveStatus(ctx(t), &kms.EnclaveStatusRequest{Name: b})
		wantErr(t, err, kms.ErrEnclaveNotFound)
	})
	g.run("DeleteEnclave again is ErrEnclaveNotFound", func(t *testing.T) {
		err := env.Root.DeleteEnclave(ctx(t), &kms.DeleteEnclaveRequest{Name: b})
		wantErr(t, err, kms.ErrEnclaveNotFound)
	})
	g.run("CreateKey in deleted enclave is ErrEnclaveNotFound", func(t *testing.T) {
		err := env.Root.CreateKey(ctx(t), b, &kms.CreateKeyRequest{Name: "k"})
		wantErr(t, err, kms.ErrEnclaveNotFound)
	})
	g.run("deleted enclave is not listed", func(t *testing.T) {
		names := listAll(t, env.Root.ListEnclaves, &kms.ListRequest{}, func(e kms.EnclaveStatusResponse) string { return e.Name })
		if slices.Contains(names, b) {
			t.Errorf("deleted enclave %q still listed", b)
		}
		if !slices.Contains(names, a) {
			t.Errorf("enclave %q missing from listing", a)
		}
	})
}

// listAll iterates a listing with the SDK's Iter and returns each item's name.
func listAll[T any](t *testing.T, next func(context.Context, *kms.ListRequest) (*kms.Page[T], error), req *kms.ListRequest, name func(T) string) []string {
	t.Helper()
	it := &kms.Iter[T]{NextFn: next}
	var names []string
	for item, err := it.SeekTo(ctx(t), req); err != io.EOF; item, err = it.Next(ctx(t)) {
		if err != nil {
			t.Fatalf("listing after %d items: %v", len(names), err)
		}
		names = append(names, name(item))
	}
	return names
}

// checkSortedUnique fails unless names are strictly increasing.
func checkSortedUnique(t *testing.T, names []string) {
	t.Helper()
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Fatalf("listing not strictly sorted at %d: %q then %q", i, names[i-1], names[i])
		}
	}
}

// checkCreatedAt fails unless at lies between start (minus clock slack) and now.
func checkCreatedAt(t *testing.T, what string, at, start time.Time) {
	t.Helper()
	const slack = time.Minute
	if at.Before(start.Add(-slack)) || at.After(time.Now().Add(slack)) {
		t.Errorf("%s: CreatedAt = %v, want between %v and now", what, at, start)
	}
}

func enclaveNames(rs []*kms.EnclaveStatusResponse) []string {
	names := make([]string, 0, len(rs))
	for _, r := range rs {
		names = append(names, r.Name)
	}
	return names
}

// ptrs returns pointers to the elements of s.
func ptrs[T any](s []T) []*T {
	p := make([]*T, len(s))
	for i := range s {
		p[i] = &s[i]
	}
	return p
}
