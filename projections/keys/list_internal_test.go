package keys

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

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
	req := Page{Prefix: "id-"}
	for pages := 0; ; pages++ {
		ids, next := listIdentitiesIn(st.Enclaves["e"], req)
		if len(ids) > 1000 {
			t.Fatalf("page of %d", len(ids))
		}
		for _, x := range ids {
			got = append(got, x.Identity)
			var i int
			fmt.Sscanf(x.Identity, "id-%05d", &i)
			if want := i%10 == 0; want != (len(x.ServiceAccounts) == 1 && x.ServiceAccounts[0] == fmt.Sprintf("sa-%05d", i)) {
				t.Fatalf("%s: service accounts %v", x.Identity, x.ServiceAccounts)
			}
		}
		if next == "" {
			if pages != 2 {
				t.Fatalf("%d pages, want 3", pages+1)
			}
			break
		}
		req = Page{Prefix: "id-", ContinueAt: next}
	}
	if len(got) != 2500 || !slices.IsSorted(got) || slices.Compact(slices.Clone(got)) == nil {
		t.Fatalf("walked %d identities, sorted %v", len(got), slices.IsSorted(got))
	}
	// ContinueAt outside the prefix: an empty page; a name between two.
	ids, next := listIdentitiesIn(st.Enclaves["e"], Page{Prefix: "id-", ContinueAt: "sa-", Limit: 10})
	if len(ids) != 0 || next != "" {
		t.Fatalf("ContinueAt outside the prefix = %d items, next %q", len(ids), next)
	}
	ks, next := listKeysIn(st.Enclaves["e"], Page{ContinueAt: "key-00005x", Limit: 2})
	if len(ks) != 2 || ks[0].Name != "key-00006" || next != "key-00008" {
		t.Fatalf("KEY:LIST from key-00005x = %+v, next %q", ks, next)
	}
}

// BenchmarkIdentityListPage is the cost of one IDENTITY:LIST page (1000
// identities, and a 10-identity page) in an enclave of 10,000 Users.
func BenchmarkIdentityListPage(b *testing.B) {
	st := listState(b, 10000)
	for _, limit := range []int{1000, 10} {
		b.Run(fmt.Sprintf("page%d", limit), func(b *testing.B) {
			req := Page{ContinueAt: "id-05000", Limit: limit}
			e := st.Enclaves["e"]
			for b.Loop() {
				listIdentitiesIn(e, req)
			}
		})
	}
}

// BenchmarkKeyListPage is the cost of one KEY:LIST page that matches
// nothing in an enclave of 10,000 keys: O(log n) with the sorted index.
func BenchmarkKeyListPage(b *testing.B) {
	st := listState(b, 10000)
	req := Page{Prefix: "nothing-"}
	e := st.Enclaves["e"]
	for b.Loop() {
		listKeysIn(e, req)
	}
}
