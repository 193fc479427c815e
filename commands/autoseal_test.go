package commands

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/ledger/ledgertest"
	"github.com/kmsledger/kmsledger/projections"
)

func newSoftHSM(t *testing.T, name string) NamedHSM {
	t.Helper()
	s, err := softkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := softkey.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return NamedHSM{Name: name, Kind: "soft", W: k}
}

// failingHSM is an HSM that is configured but cannot wrap (fault
// injection: a remote HSM that refuses this node's key).
type failingHSM struct{ hsm.Wrapper }

func (failingHSM) KeyID() string { return "soft:failing" }
func (failingHSM) Wrap(context.Context, []byte, []byte) ([]byte, error) {
	return nil, errors.New("wrap refused")
}

// hsmAdded returns the (name, actor) of every system.hsm_added.v1 event.
func hsmAdded(t *testing.T, store *ledger.Store) [][2]string {
	t.Helper()
	var out [][2]string
	if _, err := store.Replay(context.Background(), 1, func(ev ledger.Event) error {
		if ev.Type == ledger.TypeHSMAdded {
			var p ledger.HSMAdded
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				return err
			}
			out = append(out, [2]string{p.Name, ev.Actor})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSealConfigured: at start, every configured HSM without a sealing
// gets one (an hsm_added event like add-hsm's), except one removed with
// RemoveHSM, until AddHSM; a failing HSM is reported without stopping
// the others; a second start writes nothing.
func TestSealConfigured(t *testing.T) {
	ctx := context.Background()
	store := ledgertest.Open(t)
	proj, err := projections.Open(ctx, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer proj.Close()
	a, b, c := newSoftHSM(t, "a"), newSoftHSM(t, "b"), newSoftHSM(t, "c")
	rek, _, err := Unseal(ctx, store, proj, []NamedHSM{a}, InitParams{RootIdentity: root, DefaultType: string(hsm.AES256)})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(store, proj, rek, nil)
	bad := NamedHSM{Name: "bad", Kind: "soft", W: failingHSM{a.W}}

	sealed, err := h.SealConfigured(ctx, root, []NamedHSM{a, bad, b, c})
	if err == nil || !slices.Equal(sealed, []string{"b", "c"}) {
		t.Fatalf("SealConfigured = %v, %v; want b and c sealed and an error for bad", sealed, err)
	}
	if got := hsmAdded(t, store); !slices.Equal(got, [][2]string{{"b", root}, {"c", root}}) {
		t.Fatalf("hsm_added events = %v, want b and c by root", got)
	}
	// b alone now opens the REK.
	if _, u, err := Unseal(ctx, store, proj, []NamedHSM{b}, InitParams{}); err != nil || u.OpenedBy != "b" {
		t.Fatalf("Unseal with b only: %v %+v", err, u)
	}

	if err := h.RemoveHSM(ctx, root, "b"); err != nil {
		t.Fatal(err)
	}
	if sealed, err := h.SealConfigured(ctx, root, []NamedHSM{a, b, c}); err != nil || len(sealed) != 0 {
		t.Fatalf("SealConfigured after rm-hsm b = %v, %v; want nothing sealed", sealed, err)
	}
	if _, _, err := Unseal(ctx, store, proj, []NamedHSM{b}, InitParams{}); !errors.Is(err, ErrNoHSM) {
		t.Fatalf("Unseal with the removed b: err = %v, want ErrNoHSM", err)
	}
	// add-hsm undoes the removal: after another removal it stays removed.
	if err := h.AddHSM(ctx, root, b); err != nil {
		t.Fatal(err)
	}
	if err := h.RemoveHSM(ctx, root, "b"); err != nil {
		t.Fatal(err)
	}
	if sealed, err := h.SealConfigured(ctx, root, []NamedHSM{b}); err != nil || len(sealed) != 0 {
		t.Fatalf("SealConfigured after add-hsm + rm-hsm = %v, %v; want nothing", sealed, err)
	}
	if n := len(hsmAdded(t, store)); n != 3 {
		t.Fatalf("%d hsm_added events, want 3 (b, c, explicit b)", n)
	}
}
