package commands

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// eventScenario drives the real writers of the ledger (Unseal, AddHSM,
// RemoveHSM, SigningKey, the ledger's Checkpoint, and one command of each
// kind through Handler.Run and Decide) on a real store, and returns every
// event the ledger then holds, in stream order.
func eventScenario(t *testing.T) []ledger.Event {
	t.Helper()
	ctx := context.Background()
	store, proj, rek := signingLedger(t)
	const actor = "h1:root"
	h := NewHandler(store, proj, rek, nil)

	seed, err := softkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	second, err := softkey.Parse(seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddHSM(ctx, actor, NamedHSM{Name: "second", Kind: "soft", W: second}); err != nil {
		t.Fatalf("AddHSM: %v", err)
	}
	if err := h.RemoveHSM(ctx, actor, "second"); err != nil {
		t.Fatalf("RemoveHSM: %v", err)
	}
	signer, err := SigningKey(ctx, store, proj, rek, actor)
	if err != nil {
		t.Fatalf("SigningKey: %v", err)
	}

	deadline := time.Now().Add(time.Hour).UTC()
	run := func(cmds ...Command) {
		t.Helper()
		for _, c := range cmds {
			if _, err := h.Execute(ctx, actor, "", c); err != nil {
				t.Fatalf("Execute(%T %+v): %v", c, c, err)
			}
		}
	}
	run(
		CreateEnclave{Name: "e"},
		CreateKey{Enclave: "e", Name: "k"},
		CreateKey{Enclave: "e", Name: "k", AddVersion: true},
		DeleteKey{Enclave: "e", Name: "k", Version: 2},
		ImportKey{Enclave: "e", Name: "i", Material: bytes.Repeat([]byte{7}, 32)},
		ConfigureTransitKey{Enclave: "e", Name: "i", DeletionAllowed: true},
		DisableKey{Enclave: "e", Name: "k"},
		EnableKey{Enclave: "e", Name: "k"},
		ScheduleKeyDeletion{Enclave: "e", Name: "k", Deadline: deadline},
		RestoreKey{Enclave: "e", Name: "k"},
		ScheduleKeyDeletion{Enclave: "e", Name: "k", Deadline: deadline},
	)
	h.Now = func() time.Time { return deadline.Add(time.Second) }
	run(
		DestroyScheduledKey{Enclave: "e", Name: "k"},
		ReleaseKeyName{Enclave: "e", Name: "k"},
		CreateIdentity{Enclave: "e", Identity: alice},
		CreatePolicy{Enclave: "e", Name: "p", Allow: map[string][]string{"KEY:DECRYPT": {"*"}}},
		AssignPolicy{Enclave: "e", Identity: alice, Policy: "p"},
		SetAppRole{Enclave: "e", Role: "r", RoleID: "6f0c5d2e-1111-4a6b-9c1d-2e3f4a5b6c7d", Identity: alice, TokenTTL: time.Hour},
		AddAppRoleSecretID{Enclave: "e", Role: "r", Accessor: "acc1", Hash: strings.Repeat("ab", 32)},
		DeleteAppRole{Enclave: "e", Role: "r"},
		IssueToken{Enclave: "e", Hash: strings.Repeat("cd", 32), Identity: alice, Path: "auth/cert/login", TTL: time.Hour, ExpiresAt: deadline.Add(2 * time.Hour)},
		RenewToken{Enclave: "e", Accessor: strings.Repeat("cd", 12), ExpiresAt: deadline.Add(3 * time.Hour)},
		RevokeToken{Enclave: "e", Accessor: strings.Repeat("cd", 12)},
		DeletePolicy{Enclave: "e", Name: "p"},
		DeleteIdentity{Enclave: "e", Identity: alice},
		DeleteKey{Enclave: "e", Name: "i"},
		DeleteEnclave{Name: "e"},
	)
	if _, err := store.Checkpoint(ctx, signer); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}

	var evs []ledger.Event
	if _, err := store.Replay(ctx, 1, func(ev ledger.Event) error { evs = append(evs, ev); return nil }); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return evs
}

// TestEveryEventType checks, for every type in ledger.Types(), that code
// of this module writes it (a producer), that projections folds it (an
// apply case) and that it has a golden file whose payload decodes into
// the Go type named after the event, and names the missing piece. It
// also checks the reverse: no event or golden file of a type that
// ledger.Types() does not list.
func TestEveryEventType(t *testing.T) {
	evs := eventScenario(t)

	// Fold the scenario's events into a fresh state, as a reader that
	// starts from nothing would; remember which type failed and how.
	applyErr := map[string]error{}
	produced := map[string]bool{}
	s := projections.NewState()
	for _, ev := range evs {
		produced[ev.Type] = true
		if err := s.Apply(ev); err != nil && applyErr[ev.Type] == nil {
			applyErr[ev.Type] = err
		}
	}

	types := ledger.Types()
	for _, typ := range types {
		t.Run(typ, func(t *testing.T) {
			if !produced[typ] {
				t.Errorf("no producer: nothing in commands (or the ledger's checkpoints) wrote a %s event in the scenario", typ)
			} else if err := applyErr[typ]; err != nil {
				t.Errorf("no apply case in projections: State.Apply(%s) err = %v", typ, err)
			}
			checkGolden(t, typ)
		})
	}
	for typ := range produced {
		if !slices.Contains(types, typ) {
			t.Errorf("the scenario wrote a %s event, which ledger.Types() does not list", typ)
		}
	}
	files, err := filepath.Glob(filepath.Join("..", "testdata", "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("golden files: %v, %d found", err, len(files))
	}
	for _, f := range files {
		if typ := strings.TrimSuffix(filepath.Base(f), ".json"); !slices.Contains(types, typ) {
			t.Errorf("golden file %s is of a type ledger.Types() does not list", f)
		}
	}
}

// checkGolden decodes the golden file of typ strictly: the envelope, then
// the payload into the Go type ledger.NewPayload names for typ.
func checkGolden(t *testing.T, typ string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "events", typ+".json"))
	if err != nil {
		t.Errorf("no golden file: %v", err)
		return
	}
	var ev ledger.Event
	if err := strict(b, &ev); err != nil || ev.Type != typ {
		t.Errorf("golden file of %s: envelope err = %v, type %q", typ, err, ev.Type)
		return
	}
	p, ok := ledger.NewPayload(typ)
	if !ok {
		t.Errorf("ledger.NewPayload(%s): no payload type", typ)
		return
	}
	if err := strict(ev.Payload, p); err != nil {
		t.Errorf("golden payload of %s does not decode into %T: %v", typ, p, err)
	}
}

func strict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
