package commands

import (
	"context"
	"errors"
	"testing"

	"github.com/kmsledger/kmsledger/projections"
)

// The check of a Checked command runs inside the decision: while the
// scope lock is held, and, in a batch, against the state the earlier
// commands leave.
func TestCheckRunsUnderTheLockOnTheEvolvedState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, proj, rek := signingLedger(t)
	h := NewHandler(store, proj, rek, nil)
	if _, err := h.Execute(ctx, "h1:root", "", CreateEnclave{Name: "e"}); err != nil {
		t.Fatal(err)
	}

	var seen []bool // per check: was key "a" there?
	lockedDuringCheck := true
	check := func(st *projections.State) error {
		if h.scopeLock("e").TryLock() {
			lockedDuringCheck = false
			h.scopeLock("e").Unlock()
		}
		seen = append(seen, st.Enclaves["e"].Keys["a"] != nil)
		return nil
	}
	_, err := h.ExecuteBatch(ctx, "h1:root", []Command{
		Checked{Command: CreateKey{Enclave: "e", Name: "a"}, Check: check},
		Checked{Command: CreateKey{Enclave: "e", Name: "b"}, Check: check},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !lockedDuringCheck {
		t.Fatal("a check ran without the enclave's lock")
	}
	if len(seen) != 2 || seen[0] || !seen[1] {
		t.Fatalf("checks saw key a = %v, want [false true]: the second check must see the first command", seen)
	}
	// A single command goes through Execute: its check runs under the lock too.
	lockedDuringCheck, seen = true, nil
	if _, err := h.ExecuteBatch(ctx, "h1:root", []Command{Checked{Command: CreateKey{Enclave: "e", Name: "c"}, Check: check}}); err != nil {
		t.Fatal(err)
	}
	if !lockedDuringCheck || len(seen) != 1 {
		t.Fatalf("single command: locked = %v, checks = %d", lockedDuringCheck, len(seen))
	}

	// A refusing check fails the batch before anything is sealed or written.
	head, _ := store.Head(ctx)
	refs, _ := store.ListSecrets(ctx, ">")
	errNo := errors.New("no")
	_, err = h.ExecuteBatch(ctx, "h1:root", []Command{
		CreateKey{Enclave: "e", Name: "d"},
		Checked{Command: CreateKey{Enclave: "e", Name: "f"}, Check: func(*projections.State) error { return errNo }},
	})
	if !errors.Is(err, errNo) {
		t.Fatalf("ExecuteBatch err = %v, want the check's error", err)
	}
	if h2, _ := store.Head(ctx); h2 != head {
		t.Fatalf("head %d -> %d after a refused batch", head, h2)
	}
	if r2, _ := store.ListSecrets(ctx, ">"); len(r2) != len(refs) {
		t.Fatalf("SECRETS %v -> %v after a refused batch", refs, r2)
	}
	if _, err := h.ExecuteBatch(ctx, "h1:root", []Command{Checked{Command: Checked{Command: CreateKey{Enclave: "e", Name: "g"}}}}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("nested Checked err = %v, want ErrInvalidArgument", err)
	}
}
