package commands

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

const testRoot = "h1:root"

// idemHandler is a Handler on an initialised ledger with enclave e1.
func idemHandler(t *testing.T) (*Handler, *ledger.Store) {
	t.Helper()
	return idemHandlerConfig(t, ledger.Config{})
}

// idemHandlerConfig is idemHandler on a Store opened with cfg.
func idemHandlerConfig(t *testing.T, cfg ledger.Config) (*Handler, *ledger.Store) {
	t.Helper()
	store, proj, rek := signingLedgerConfig(t, cfg)
	h := NewHandler(store, proj, rek, nil)
	if _, err := h.Run(context.Background(), testRoot, "", CreateEnclave{Name: "e1"}); err != nil {
		t.Fatal(err)
	}
	return h, store
}

func listSecrets(t *testing.T, s *ledger.Store) []string {
	t.Helper()
	refs, err := s.ListSecrets(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return refs
}

// liveRefs returns the references the projection's key versions hold.
func liveRefs(h *Handler) []string {
	var refs []string
	h.proj.View(func(s *projections.State) {
		for _, e := range s.Enclaves {
			for _, k := range e.Keys {
				for _, v := range k.Versions() {
					refs = append(refs, v.SecretRef(e.Name, k.Name))
				}
			}
		}
	})
	slices.Sort(refs)
	return refs
}

func decide(t *testing.T, h *Handler, cmdID string, cmd Command) Decision {
	t.Helper()
	if err := h.proj.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	var (
		d   Decision
		err error
	)
	h.proj.View(func(s *projections.State) {
		d, err = Decide(s, cmd, Env{Now: h.Now(), Actor: testRoot, CommandID: cmdID, EventID: NewID(), Seal: h.seal})
	})
	if err != nil {
		t.Fatalf("Decide(%T) err = %v", cmd, err)
	}
	if len(d.Put) == 0 {
		t.Fatalf("Decide(%T) stores no material", cmd)
	}
	return d
}

// TestCommitLeavesNothingBehind: an attempt whose event is a duplicate or
// loses a conflict erases the material it stored, and only that.
func TestCommitLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, store := idemHandler(t)
	first, err := h.Run(ctx, testRoot, "X", CreateKey{Enclave: "e1", Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	before := listSecrets(t, store)

	// A retry of X on k decided as a new version (as a node that missed
	// the first event would): Append finds the duplicate.
	d := decide(t, h, "X", CreateKey{Enclave: "e1", Name: "k", AddVersion: true})
	seq, dup, err := h.commit(ctx, d)
	if err != nil || !dup || seq != first.Seq {
		t.Fatalf("commit(duplicate) = (%d, %v, %v), want (%d, true, nil)", seq, dup, err, first.Seq)
	}
	if got := listSecrets(t, store); !slices.Equal(got, before) {
		t.Errorf("after a duplicate SECRETS = %q, want %q", got, before)
	}

	// A decision that lost the race for k2.
	d = decide(t, h, "Y", CreateKey{Enclave: "e1", Name: "k2"})
	if _, err := h.Run(ctx, testRoot, "", CreateKey{Enclave: "e1", Name: "k2"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.commit(ctx, d); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("commit(stale) err = %v, want ErrConflict", err)
	}
	for ref := range d.Put {
		if _, err := store.GetSecret(ctx, ref); !errors.Is(err, ledger.ErrSecretNotFound) {
			t.Errorf("GetSecret(%s) of the losing attempt err = %v, want ErrSecretNotFound", ref, err)
		}
	}
	if got, want := listSecrets(t, store), liveRefs(h); !slices.Equal(got, want) {
		t.Errorf("SECRETS = %q, live versions reference %q", got, want)
	}
}

// TestRunReplay: a replayed id answers with the original event and writes
// nothing; an id reused for another kind of command on the aggregate is
// refused; the same id on another aggregate is a new command.
func TestRunReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, store := idemHandler(t)
	m := make([]byte, 32)
	rand.Read(m)
	imp := ImportKey{Enclave: "e1", Name: "a", Material: m}
	first, err := h.Run(ctx, testRoot, "X", imp)
	if err != nil || first.Replayed || first.Event.Type != ledger.TypeKeyImported {
		t.Fatalf("Run(import) = %+v, %v", first, err)
	}
	head, _ := store.Head(ctx)
	refs := listSecrets(t, store)
	tests := []struct {
		name    string
		cmd     Command
		wantErr error
	}{
		{"SameImport", imp, nil},
		{"OtherMaterial", ImportKey{Enclave: "e1", Name: "a", Material: make([]byte, 32)}, ErrCommandIDReused},
		{"OtherCommand", DeleteKey{Enclave: "e1", Name: "a"}, ErrCommandIDReused},
		{"CreateKey", CreateKey{Enclave: "e1", Name: "a", AddVersion: true}, ErrCommandIDReused},
	}
	for _, tt := range tests {
		r, err := h.Run(ctx, testRoot, "X", tt.cmd)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Run err = %v, want %v", tt.name, err, tt.wantErr)
		}
		if err == nil && (!r.Replayed || r.Seq != first.Seq || r.Event.ID != first.Event.ID) {
			t.Errorf("%s: Run = %+v, want a replay of seq %d", tt.name, r, first.Seq)
		}
	}
	if h2, _ := store.Head(ctx); h2 != head {
		t.Errorf("replays moved the head from %d to %d", head, h2)
	}
	if got := listSecrets(t, store); !slices.Equal(got, refs) {
		t.Errorf("replays changed SECRETS from %q to %q", refs, got)
	}
	r, err := h.Run(ctx, testRoot, "X", ImportKey{Enclave: "e1", Name: "b", Material: m})
	if err != nil || r.Replayed || r.Seq != head+1 {
		t.Fatalf("Run(import b with X) = %+v, %v; want a new event", r, err)
	}
	if _, err := h.Run(ctx, testRoot, "bad id", imp); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Run with id %q err = %v, want ErrInvalidArgument", "bad id", err)
	}
	// Names are checked before the lookup turns them into subjects.
	for _, name := range []string{"bad*", "a.b", ">", ""} {
		if _, err := h.Run(ctx, testRoot, "X", ImportKey{Enclave: "e1", Name: name, Material: m}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Run(import %q) err = %v, want ErrInvalidName", name, err)
		}
	}
}

// TestRunReplayPastDuplicatesWindow: a command id is recognised for 24
// hours, not only while the server's duplicates window remembers its
// message id: the same import long after it (here the window is 100 ms
// and the retry comes a second later) is a replay that writes nothing,
// and other material under that id is still refused.
func TestRunReplayPastDuplicatesWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, store := idemHandlerConfig(t, ledger.Config{DuplicateWindow: 100 * time.Millisecond})
	m := make([]byte, 32)
	rand.Read(m)
	imp := ImportKey{Enclave: "e1", Name: "a", Material: m}
	first, err := h.Run(ctx, testRoot, "X", imp)
	if err != nil || first.Replayed {
		t.Fatalf("Run(import) = %+v, %v", first, err)
	}
	if _, err := h.Run(ctx, testRoot, "", CreateKey{Enclave: "e1", Name: "a", AddVersion: true}); err != nil {
		t.Fatal(err) // an event after it on the same key
	}
	time.Sleep(time.Second) // ten windows: the server's purge has run
	head, _ := store.Head(ctx)
	refs := listSecrets(t, store)
	r, err := h.Run(ctx, testRoot, "X", imp)
	if err != nil || !r.Replayed || r.Seq != first.Seq || r.Event.ID != first.Event.ID {
		t.Fatalf("Run(same import) past the window = %+v, %v; want a replay of seq %d", r, err, first.Seq)
	}
	if _, err := h.Run(ctx, testRoot, "X", ImportKey{Enclave: "e1", Name: "a", Material: make([]byte, 32)}); !errors.Is(err, ErrCommandIDReused) {
		t.Errorf("Run(other material) past the window err = %v, want ErrCommandIDReused", err)
	}
	if h2, _ := store.Head(ctx); h2 != head {
		t.Errorf("replays moved the head from %d to %d", head, h2)
	}
	if got := listSecrets(t, store); !slices.Equal(got, refs) {
		t.Errorf("replays changed SECRETS from %q to %q", refs, got)
	}
}

// TestRunRacingSameCommandID: two nodes (handlers) running the same
// command id at once append one event; the other answers with it as a
// replay, and no material is left behind.
func TestRunRacingSameCommandID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h1, store := idemHandler(t)
	h2 := NewHandler(store, h1.proj, h1.rek, nil)
	head, _ := store.Head(ctx)
	for i, cmd := range []Command{
		CreateKey{Enclave: "e1", Name: "c"},
		ImportKey{Enclave: "e1", Name: "i", Material: make([]byte, 32)},
		CreateKey{Enclave: "e1", Name: "c", AddVersion: true},
	} {
		var (
			wg   sync.WaitGroup
			res  [2]Result
			errs [2]error
		)
		for j, h := range []*Handler{h1, h2} {
			wg.Go(func() { res[j], errs[j] = h.Run(ctx, testRoot, fmt.Sprintf("R%d", i), cmd) })
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || res[0].Seq != res[1].Seq || res[0].Replayed == res[1].Replayed {
			t.Fatalf("%T: racing Run = (%+v, %v), (%+v, %v); want one event and one replay of it", cmd, res[0], errs[0], res[1], errs[1])
		}
		if h, _ := store.Head(ctx); h != head+uint64(i)+1 {
			t.Fatalf("%T: head %d, want %d", cmd, h, head+uint64(i)+1)
		}
		if got, want := listSecrets(t, store), liveRefs(h1); !slices.Equal(got, want) {
			t.Fatalf("%T: SECRETS = %q, live versions reference %q", cmd, got, want)
		}
	}
}

// TestCommitKeepsMaterialOfAnUnknownOutcome: when an append's answer is
// lost and the lookup does not find the event yet, the attempt's material
// stays: the event stored after that (a late publish) names material that
// is there. An attempt whose command id another attempt already appended
// is erased as before.
func TestCommitKeepsMaterialOfAnUnknownOutcome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, store := idemHandler(t)
	var lateEv ledger.Event
	var lateX ledger.Expect
	h.appendEvent = func(_ context.Context, ev ledger.Event, x ledger.Expect) (uint64, bool, error) {
		lateEv, lateX = ev, x // not stored yet: its answer is lost
		return 0, false, fmt.Errorf("publish: %w", context.DeadlineExceeded)
	}
	if _, err := h.Run(ctx, testRoot, "L", CreateKey{Enclave: "e1", Name: "late"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run err = %v, want the lost answer's", err)
	}
	h.appendEvent = store.Append
	seq, _, err := store.Append(ctx, lateEv, lateX) // the publish lands after all
	if err != nil {
		t.Fatal(err)
	}
	if err := h.proj.WaitFor(ctx, seq); err != nil {
		t.Fatal(err)
	}
	live := liveRefs(h)
	if len(live) != 1 {
		t.Fatalf("live versions %q, want the late key's", live)
	}
	if _, err := store.GetSecret(ctx, live[0]); err != nil {
		t.Errorf("the late event's material: GetSecret err = %v, want it kept", err)
	}

	// The same command id appended by another attempt: this one's
	// message can never be stored, and its material goes.
	d := decide(t, h, "L", CreateKey{Enclave: "e1", Name: "late", AddVersion: true})
	h.appendEvent = func(context.Context, ledger.Event, ledger.Expect) (uint64, bool, error) {
		return 0, false, context.DeadlineExceeded
	}
	if _, dup, err := h.commit(ctx, d); err != nil || !dup {
		t.Fatalf("commit = dup %v, %v; want the other attempt's event", dup, err)
	}
	for ref := range d.Put {
		if _, err := store.GetSecret(ctx, ref); !errors.Is(err, ledger.ErrSecretNotFound) {
			t.Errorf("GetSecret(%s) of the attempt that lost err = %v, want ErrSecretNotFound", ref, err)
		}
	}
}
