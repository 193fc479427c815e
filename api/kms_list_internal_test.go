package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// listState is an enclave "e" with n Users, each tenth with a service
// account, and n keys.
func listState(tb testing.TB, n int) *projections.State {
	tb.Helper()
	st := projections.NewState()
	var seq uint64
	apply := func(typ, enclave, subject string, p any) {
		b, _ := json.Marshal(p)
		seq++
		if err := st.Apply(ledger.Event{Type: typ, Seq: seq, Enclave: enclave, Aggregate: subject, Payload: b}); err != nil {
			tb.Fatal(err)
		}
	}
	apply(ledger.TypeSystemInitialized, "", ledger.SystemSubject(), ledger.SystemInitialized{RootIdentity: "root"})
	apply(ledger.TypeEnclaveCreated, "", ledger.EnclaveSubject("e"), ledger.EnclaveCreated{Name: "e"})
	for i := range n {
		id := fmt.Sprintf("id-%05d", i)
		apply(ledger.TypeIdentityCreated, "e", "ledger.e.identity."+id, ledger.IdentityCreated{Identity: id, Privilege: ledger.PrivilegeUser})
		if i%10 == 0 {
			sa := fmt.Sprintf("sa-%05d", i)
			apply(ledger.TypeIdentityCreated, "e", "ledger.e.identity."+sa, ledger.IdentityCreated{Identity: sa, Privilege: ledger.PrivilegeUser, ServiceAccount: true, Parent: id})
		}
		k := fmt.Sprintf("key-%05d", i)
		apply(ledger.TypeKeyCreated, "e", ledger.KeySubject("e", k), ledger.KeyCreated{Name: k, Version: 1, Type: "AES256"})
	}
	return st
}

// Walking the pages with ContinueAt returns every identity once, in
// order, with its service accounts; prefixes and limits hold.
func TestIdentityListPages(t *testing.T) {
	st := listState(t, 2500)
	var got []string
	req := &wire.ListRequest{Prefix: "id-"}
	for pages := 0; ; pages++ {
		m, err := listPage(st, "e", wire.CmdIdentityList, req, 1000)
		if err != nil {
			t.Fatal(err)
		}
		r := m.(*wire.ListIdentitiesResponse)
		if len(r.Identities) > 1000 {
			t.Fatalf("page of %d", len(r.Identities))
		}
		for _, x := range r.Identities {
			got = append(got, x.Identity)
			var i int
			fmt.Sscanf(x.Identity, "id-%05d", &i)
			if want := i%10 == 0; want != (len(x.ServiceAccounts) == 1 && x.ServiceAccounts[0] == fmt.Sprintf("sa-%05d", i)) {
				t.Fatalf("%s: service accounts %v", x.Identity, x.ServiceAccounts)
			}
		}
		if r.ContinueAt == "" {
			if pages != 2 {
				t.Fatalf("%d pages, want 3", pages+1)
			}
			break
		}
		req = &wire.ListRequest{Prefix: "id-", ContinueAt: r.ContinueAt}
	}
	if len(got) != 2500 || !slices.IsSorted(got) || slices.Compact(slices.Clone(got)) == nil {
		t.Fatalf("walked %d identities, sorted %v", len(got), slices.IsSorted(got))
	}
	// ContinueAt outside the prefix: an empty page; a name between two.
	m, _ := listPage(st, "e", wire.CmdIdentityList, &wire.ListRequest{Prefix: "id-", ContinueAt: "sa-"}, 10)
	if r := m.(*wire.ListIdentitiesResponse); len(r.Identities) != 0 || r.ContinueAt != "" {
		t.Fatalf("ContinueAt outside the prefix = %d items, next %q", len(r.Identities), r.ContinueAt)
	}
	m, _ = listPage(st, "e", wire.CmdKeyList, &wire.ListRequest{ContinueAt: "key-00005x", Limit: 2}, 2)
	if r := m.(*wire.ListKeysResponse); len(r.Keys) != 2 || r.Keys[0].Name != "key-00006" || r.ContinueAt != "key-00008" {
		t.Fatalf("KEY:LIST from key-00005x = %+v, next %q", r.Keys, r.ContinueAt)
	}
}

// BenchmarkIdentityListPage is the cost of one IDENTITY:LIST page (1000
// identities, and a 10-identity page) in an enclave of 10,000 Users.
func BenchmarkIdentityListPage(b *testing.B) {
	st := listState(b, 10000)
	for _, limit := range []int{1000, 10} {
		b.Run(fmt.Sprintf("page%d", limit), func(b *testing.B) {
			req := &wire.ListRequest{ContinueAt: "id-05000"}
			for b.Loop() {
				if _, err := listPage(st, "e", wire.CmdIdentityList, req, limit); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkKeyListPage is the cost of one KEY:LIST page that matches
// nothing in an enclave of 10,000 keys: O(log n) with the sorted index.
func BenchmarkKeyListPage(b *testing.B) {
	st := listState(b, 10000)
	req := &wire.ListRequest{Prefix: "nothing-"}
	for b.Loop() {
		if _, err := listPage(st, "e", wire.CmdKeyList, req, 1000); err != nil {
			b.Fatal(err)
		}
	}
}
