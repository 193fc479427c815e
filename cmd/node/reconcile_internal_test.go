package node

import (
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
)

// TestFirstPassSparesLaterMaterial: the first pass runs while the node
// serves and has no grace, so it is bounded by SECRETS' last sequence at
// the start: material stored before the start for nothing is erased,
// however young, and material stored after it (a command between storing
// its material and appending its event) is left to a later pass, and the
// mark stops before it. Without a bound the pass keeps the usual grace.
func TestFirstPassSparesLaterMaterial(t *testing.T) {
	k, err := softkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Dir: t.TempDir(), HSMs: []config.HSM{{Name: "soft", Soft: &config.Soft{Key: k}}}, SchedulerInterval: -1}
	n, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	select {
	case <-n.Reconciled():
	case <-time.After(30 * time.Second):
		t.Fatal("the first reconcile pass did not end")
	}
	ctx := t.Context()
	put := func(name string) string {
		ref := ledger.AttemptSecretRef("e", name, 1, commands.NewID())
		if err := n.Store.PutSecret(ctx, ref, []byte("sealed")); err != nil {
			t.Fatal(err)
		}
		return ref
	}
	list := func() []string {
		refs, err := n.Store.ListSecrets(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		return refs
	}
	before := put("before")
	first := n.reconcileStart(ctx) // as if the node started here
	after := put("after")
	if m := n.firstReconcile(ctx, first); m.Secrets != first.upTo {
		t.Errorf("first pass mark %+v, want SECRETS at the start's last sequence %d", m, first.upTo)
	}
	if got := list(); slices.Contains(got, before) || !slices.Contains(got, after) {
		t.Errorf("after the first pass: %v; want %s erased and %s kept", got, before, after)
	}
	// Unbounded (the start could not read SECRETS): the usual grace.
	n.firstReconcile(ctx, firstPass{from: first.from})
	if got := list(); !slices.Contains(got, after) {
		t.Errorf("an unbounded first pass erased %s, younger than its grace: %v", after, got)
	}
}
