package commands

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/ledger/ledgertest"
	"github.com/kmsledger/kmsledger/projections"
)

// TestSystemEventsUseInjectedClock: the events of initialisation are
// dated by InitParams.Now, and those of AddHSM and RemoveHSM by
// Handler.Now, not by the wall clock.
func TestSystemEventsUseInjectedClock(t *testing.T) {
	ctx := context.Background()
	store := ledgertest.Open(t)
	proj, err := projections.Open(ctx, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proj.Close)
	soft := func() NamedHSM {
		s, err := softkey.Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := softkey.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return NamedHSM{Name: k.KeyID(), Kind: "soft", W: k}
	}
	initAt := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	laterAt := initAt.Add(48 * time.Hour)

	rek, _, err := Unseal(ctx, store, proj, []NamedHSM{soft(), soft()},
		InitParams{RootIdentity: "h1:root", DefaultType: "AES256", Now: func() time.Time { return initAt }})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(store, proj, rek, nil)
	h.Now = func() time.Time { return laterAt }
	third := soft()
	if err := h.AddHSM(ctx, "h1:root", third); err != nil {
		t.Fatal(err)
	}
	if err := h.RemoveHSM(ctx, "h1:root", third.Name); err != nil {
		t.Fatal(err)
	}

	want := []struct {
		typ string
		at  time.Time
	}{
		{ledger.TypeSystemInitialized, initAt}, {ledger.TypeHSMAdded, initAt},
		{ledger.TypeHSMAdded, laterAt}, {ledger.TypeHSMRemoved, laterAt},
	}
	var got []ledger.Event
	if _, err := store.Replay(ctx, 1, func(ev ledger.Event) error { got = append(got, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("ledger holds %d events, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Type != w.typ || !got[i].Time.Equal(w.at) {
			t.Errorf("event %d = %s at %v, want %s at %v", i+1, got[i].Type, got[i].Time, w.typ, w.at)
		}
	}
}
