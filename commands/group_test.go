package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// TestRacingCreatorsGrouped: while many keys are created at once (their
// appends grouped by the ledger), creators of one name racing from four
// handlers (as from four nodes) get exactly one success and ErrKeyExists
// for the others; every other creation succeeds, and SECRETS holds the
// material of the live versions only.
func TestRacingCreatorsGrouped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h1, store := idemHandler(t)
	hs := []*Handler{h1}
	for range 3 {
		hs = append(hs, NewHandler(store, h1.proj, h1.rek, nil))
	}
	for round := range 4 {
		var wg sync.WaitGroup
		racers := make([]error, len(hs))
		others := make([]error, 24)
		for i, h := range hs {
			wg.Go(func() {
				_, racers[i] = h.Run(ctx, testRoot, "", CreateKey{Enclave: "e1", Name: fmt.Sprintf("race-%d", round)})
			})
		}
		for i := range others {
			h := hs[i%len(hs)]
			wg.Go(func() {
				_, others[i] = h.Run(ctx, testRoot, "", CreateKey{Enclave: "e1", Name: fmt.Sprintf("other-%d-%d", round, i)})
			})
		}
		wg.Wait()
		wins := 0
		for i, err := range racers {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, ErrKeyExists):
				t.Fatalf("round %d: racer %d err = %v, want nil or ErrKeyExists", round, i, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d racers created the key, want exactly 1", round, wins)
		}
		for i, err := range others {
			if err != nil {
				t.Fatalf("round %d: creation %d err = %v", round, i, err)
			}
		}
	}
	if got, want := listSecrets(t, store), liveRefs(h1); !slices.Equal(got, want) {
		t.Fatalf("SECRETS holds %d refs, live versions %d: %q vs %q", len(got), len(want), got, want)
	}
	if _, _, largest := store.GroupStats(); largest < 2 {
		t.Fatalf("largest LEDGER group = %d: the creations were never grouped", largest)
	}
	if decided, sent := store.ExpectStats(); decided == 0 {
		t.Fatalf("the ledger proved no expectation itself (%d left to the server): the race never met that path", sent)
	}
}
