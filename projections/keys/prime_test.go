package keys_test

import (
	"context"
	"testing"

	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger/ledgertest"
	"github.com/kmsledger/kmsledger/projections"
	"github.com/kmsledger/kmsledger/projections/keys"
)

// TestNewKeysArePrimed: a key created or imported, alone or in a batch,
// or a version added, is in the key cache once the command returns, so
// its first use is a hit and reads no sealed material.
func TestNewKeysArePrimed(t *testing.T) {
	n := newNodeOn(t, ledgertest.Open(t), projections.Options{KeyCache: 10})
	ctx := context.Background()
	n.run(commands.CreateKey{Enclave: "e", Name: "k"})
	n.run(commands.CreateKey{Enclave: "e", Name: "k", AddVersion: true})
	n.run(commands.ImportKey{Enclave: "e", Name: "imported", Type: "AES256", Material: make([]byte, 32)})
	if _, err := n.h.ExecuteBatch(ctx, root, []commands.Command{
		commands.CreateKey{Enclave: "e", Name: "b1"}, commands.CreateKey{Enclave: "e", Name: "b2"},
	}); err != nil {
		t.Fatal(err)
	}
	if s := n.proj.KeyCacheStats(); s.Size != 5 || s.Misses != 0 {
		t.Fatalf("after creating 5 versions: %+v, want 5 cached, no miss", s)
	}
	for _, name := range []string{"k", "imported", "b1", "b2"} {
		if err := n.roundTrip(ctx, "e", name); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := n.svc.Encrypt(ctx, "e", "k", 1, []byte("pt"), nil); err != nil {
		t.Fatal(err)
	}
	if s := n.proj.KeyCacheStats(); s.Misses != 0 || s.Hits != 9 {
		t.Fatalf("after using them: %+v, want 9 hits and no miss", s)
	}
}

// TestPrimeRefusesWhatDoesNotBelong: Prime caches nothing for material
// that is not the version's (it does not open under the version's
// associated data), for a reference the version was not stored under,
// for a version that may not be used, or for one that is not there; the
// version is then unsealed from SECRETS at its first use.
func TestPrimeRefusesWhatDoesNotBelong(t *testing.T) {
	n := newNodeOn(t, ledgertest.Open(t), projections.Options{KeyCache: 10})
	ctx := context.Background()
	n.run(commands.CreateKey{Enclave: "e", Name: "a"})
	n.run(commands.CreateKey{Enclave: "e", Name: "b"})
	n.run(commands.CreateKey{Enclave: "e", Name: "off"})
	ref := func(name string) string {
		_, v, err := n.svc.Key(ctx, "e", name, 0)
		if err != nil {
			t.Fatal(err)
		}
		return v.SecretRef("e", name)
	}
	sealed := func(name string) []byte {
		b, err := n.store.GetSecret(ctx, ref(name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Start from an empty cache: a fresh projection on the same ledger.
	n2 := newNodeOnREK(t, n, projections.Options{KeyCache: 10})
	n2.run(commands.DisableKey{Enclave: "e", Name: "off"})
	n2.proj.Prime("e", "a", 1, ref("a"), sealed("b"))       // b's material under a's name
	n2.proj.Prime("e", "b", 1, ref("a"), sealed("b"))       // a reference b is not stored under
	n2.proj.Prime("e", "off", 1, ref("off"), sealed("off")) // disabled
	n2.proj.Prime("e", "gone", 1, ref("a"), sealed("a"))    // no such key
	n2.proj.Prime("x", "a", 1, ref("a"), sealed("a"))       // no such enclave
	if s := n2.proj.KeyCacheStats(); s.Size != 0 {
		t.Fatalf("after refused primes: %+v, want nothing cached", s)
	}
	n2.proj.Prime("e", "a", 1, ref("a"), sealed("a"))
	if s := n2.proj.KeyCacheStats(); s.Size != 1 {
		t.Fatalf("after a's own prime: %+v, want 1 cached", s)
	}
	for _, name := range []string{"a", "b"} {
		if err := n2.roundTrip(ctx, "e", name); err != nil {
			t.Fatal(err)
		}
	}
	if s := n2.proj.KeyCacheStats(); s.Misses != 1 || s.Hits != 3 {
		t.Fatalf("after using a and b: %+v, want b's first use the only miss", s)
	}
}

// newNodeOnREK is a second node on n's ledger and root key, with a
// projection of its own (an empty key cache).
func newNodeOnREK(t *testing.T, n *node, o projections.Options) *node {
	t.Helper()
	proj, err := projections.OpenWith(context.Background(), n.store, nil, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proj.Close)
	proj.SetREK(n.rek)
	return &node{t: t, store: n.store, proj: proj, rek: n.rek, h: commands.NewHandler(n.store, proj, n.rek, nil), svc: keys.New(proj)}
}
