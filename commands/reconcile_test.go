package commands

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// TestReconcileFromMark: a pass erases material stored for nothing and
// the material of versions destroyed without their erasure (a crash
// between the event and the erase), keeps every live version's, leaves
// material younger than the grace for a later pass, and each pass checks
// only what came after the mark of the one before.
func TestReconcileFromMark(t *testing.T) {
	h, store := idemHandler(t)
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		if _, err := h.Run(ctx, testRoot, "", CreateKey{Enclave: "e1", Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	orphan := func(name string) string { return putOrphan(t, store, name) }
	pass := func(from ReconcileMark, grace time.Duration, wantErased int) ReconcileMark {
		t.Helper()
		return passUpTo(t, h, from, grace, 0, wantErased)
	}
	live := liveRefs(h)

	orphan("o1")
	m1 := pass(ReconcileMark{}, 0, 1)
	head, _ := store.Head(ctx)
	last, _ := store.SecretsLastSeq(ctx)
	if m1.Ledger != head || m1.Secrets != last {
		t.Errorf("mark = %+v, want the heads (%d, %d)", m1, head, last)
	}
	if got := listSecrets(t, store); !slices.Equal(got, live) {
		t.Errorf("after the first pass: %v, want the live versions' %v", got, live)
	}

	// Key a destroyed by an event whose erasure never ran; material stored
	// for nothing after the mark.
	destroyUnerased(t, h, store, "a")
	orphan("o2")
	m2 := pass(m1, 0, 2)
	if err := h.proj.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := listSecrets(t, store), liveRefs(h); !slices.Equal(got, want) || len(want) != 1 {
		t.Errorf("after the second pass: %v, want only key b's %v", got, want)
	}

	// Young material is left, and the mark stops before it.
	young := orphan("o3")
	m3 := pass(m2, time.Hour, 0)
	if last, _ := store.SecretsLastSeq(ctx); m3.Secrets >= last || !slices.Contains(listSecrets(t, store), young) {
		t.Errorf("a pass with grace: mark %+v, refs %v; want %s kept and the mark before it", m3, listSecrets(t, store), young)
	}
	h.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	m4 := pass(m3, time.Hour, 1)
	if m5 := pass(m4, 0, 0); m5 != m4 {
		t.Errorf("a pass with nothing new moved the mark from %+v to %+v", m4, m5)
	}
}

// TestReconcileMarkPassesReferencedYoung: young material that a live
// version references is settled by the background pass that reads it,
// so the mark goes past it; only young material nothing references yet
// holds the mark back, and is neither erased nor skipped by the next
// pass. A bounded pass (a cluster node's first, before it serves) still
// stops at the first young material.
func TestReconcileMarkPassesReferencedYoung(t *testing.T) {
	h, store := idemHandler(t)
	ctx := context.Background()
	create := func(name string) {
		t.Helper()
		if _, err := h.Run(ctx, testRoot, "", CreateKey{Enclave: "e1", Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	create("a")
	last, _ := store.SecretsLastSeq(ctx)
	if mb := passUpTo(t, h, ReconcileMark{}, time.Hour, last, 0); mb.Secrets != 0 {
		t.Errorf("a bounded pass over young material: mark %+v, want SECRETS at 0 (stopped at the first)", mb)
	}
	m1 := passUpTo(t, h, ReconcileMark{}, time.Hour, 0, 0)
	if last, _ := store.SecretsLastSeq(ctx); m1.Secrets != last {
		t.Errorf("young material, all referenced: mark %+v, want SECRETS at its last sequence %d", m1, last)
	}
	young := putOrphan(t, store, "o1")
	e, err := store.SecretStored(ctx, young)
	if err != nil {
		t.Fatal(err)
	}
	create("b")
	m2 := passUpTo(t, h, m1, time.Hour, 0, 0)
	if m2.Secrets != e.Seq-1 || !slices.Contains(listSecrets(t, store), young) {
		t.Errorf("a young orphan before a young live version: mark %+v, refs %v; want %s kept and the mark at %d", m2, listSecrets(t, store), young, e.Seq-1)
	}
	h.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	m3 := passUpTo(t, h, m2, time.Hour, 0, 1)
	if last, _ := store.SecretsLastSeq(ctx); m3.Secrets != last {
		t.Errorf("the orphan once old: mark %+v, want %d", m3, last)
	}
	if got, want := listSecrets(t, store), liveRefs(h); !slices.Equal(got, want) {
		t.Errorf("after the passes: %v, want the live versions' %v", got, want)
	}
}

// TestReconcileBounded: a pass bounded to the material stored up to a
// sequence (a node's first pass: what was there before it started), with
// no grace, erases the orphan before the bound, leaves the one after it,
// and its mark stops between them; the next pass takes that one.
func TestReconcileBounded(t *testing.T) {
	h, store := idemHandler(t)
	ctx := context.Background()
	if _, err := h.Run(ctx, testRoot, "", CreateKey{Enclave: "e1", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	orphan := func(name string) string { return putOrphan(t, store, name) }
	orphan("before")
	bound, _ := store.SecretsLastSeq(ctx)
	after := orphan("after")
	m := passUpTo(t, h, ReconcileMark{}, 0, bound, 1)
	if m.Secrets != bound || !slices.Contains(listSecrets(t, store), after) {
		t.Errorf("a pass bounded to %d: mark %+v, refs %v; want %s kept and the mark at the bound", bound, m, listSecrets(t, store), after)
	}
	if m2 := passUpTo(t, h, m, 0, 0, 1); m2.Secrets != bound+1 {
		t.Errorf("the pass after the bounded one: mark %+v, want SECRETS at %d", m2, bound+1)
	}
	if got, want := listSecrets(t, store), liveRefs(h); !slices.Equal(got, want) {
		t.Errorf("after both passes: %v, want the live versions' %v", got, want)
	}
}

// TestReconcileKeepsInFlightOfDestroyed: a bounded first pass erases the
// material of a destroyed version stored before the bound, but not the
// material stored after it under the same version's references (a command
// that re-creates the key may be between storing it and appending its
// event). The scan stops at the bound, so only the stored sequence of the
// destroyed version's references tells the two apart.
func TestReconcileKeepsInFlightOfDestroyed(t *testing.T) {
	h, store := idemHandler(t)
	ctx := context.Background()
	if _, err := h.Run(ctx, testRoot, "", CreateKey{Enclave: "e1", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	m := passUpTo(t, h, ReconcileMark{}, 0, 0, 0)
	old := liveRefs(h)
	destroyUnerased(t, h, store, "a")
	bound, _ := store.SecretsLastSeq(ctx)
	inFlight := putOrphan(t, store, "a")
	orphan := putOrphan(t, store, "o")
	m2 := passUpTo(t, h, m, 0, bound, len(old))
	got := listSecrets(t, store)
	if !slices.Contains(got, inFlight) || !slices.Contains(got, orphan) || slices.ContainsFunc(old, func(r string) bool { return slices.Contains(got, r) }) {
		t.Errorf("bounded pass: refs %v; want %s and %s kept and the destroyed %v erased", got, inFlight, orphan, old)
	}
	if m2.Secrets != bound {
		t.Errorf("bounded pass: mark %+v, want SECRETS at the bound %d", m2, bound)
	}
	passUpTo(t, h, m2, 0, 0, 2)
	if got := listSecrets(t, store); len(got) != 0 {
		t.Errorf("after the unbounded pass: %v, want nothing", got)
	}
}

// destroyUnerased appends the deletion of key name of e1 without erasing
// its material: a crash between the event and the erase.
func destroyUnerased(t *testing.T, h *Handler, store *ledger.Store, name string) {
	t.Helper()
	var d Decision
	var err error
	h.proj.View(func(s *projections.State) {
		d, err = Decide(s, DeleteKey{Enclave: "e1", Name: name, All: true}, Env{Now: h.Now(), Actor: testRoot, CommandID: NewID(), EventID: NewID(), Seal: h.seal})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Append(context.Background(), d.Event, d.Expect); err != nil {
		t.Fatal(err)
	}
}

// putOrphan stores material for version 1 of key name of enclave e1 that
// no event references, and returns its reference.
func putOrphan(t *testing.T, store *ledger.Store, name string) string {
	t.Helper()
	ref := ledger.AttemptSecretRef("e1", name, 1, NewID())
	if err := store.PutSecret(context.Background(), ref, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	return ref
}

// passUpTo runs one Reconcile pass and checks how many it erased.
func passUpTo(t *testing.T, h *Handler, from ReconcileMark, grace time.Duration, upTo uint64, wantErased int) ReconcileMark {
	t.Helper()
	m, n, err := h.Reconcile(context.Background(), from, grace, upTo)
	if err != nil || n != wantErased {
		t.Fatalf("Reconcile(%+v, %v, %d) = (%+v, %d, %v), want %d erased", from, grace, upTo, m, n, err, wantErased)
	}
	return m
}
