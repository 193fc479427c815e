package commands

import (
	"context"
	"fmt"
	"testing"

	"github.com/kmsledger/kmsledger/projections"
)

// TestWarmKeyCache: a projection opened anew, as at a start, has an empty
// key cache. WarmKeyCache fills it from SECRETS with every live, usable
// version (not a disabled key's, not a destroyed version's), stops at the
// cache's capacity, and stops when its context ends. A use after it is a
// hit, not a miss.
func TestWarmKeyCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := benchHandler(t)
	run := func(cmd Command) {
		t.Helper()
		if _, err := h.Run(ctx, testRoot, "", cmd); err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
	}
	for i := range 6 {
		run(CreateKey{Enclave: "e1", Name: fmt.Sprintf("k%d", i)})
	}
	run(DisableKey{Enclave: "e1", Name: "k1"})
	run(CreateKey{Enclave: "e1", Name: "k2", AddVersion: true})
	run(DeleteKey{Enclave: "e1", Name: "k2", Version: 1}) // its material is erased; version 2 stays
	restarted := func(capacity int) *Handler {
		t.Helper()
		proj, err := projections.OpenWith(ctx, h.store, h.rek, nil, projections.Options{KeyCache: capacity})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(proj.Close)
		if st := proj.KeyCacheStats(); st.Size != 0 {
			t.Fatalf("a new projection's key cache holds %d versions", st.Size)
		}
		return NewHandler(h.store, proj, h.rek, nil)
	}

	warm := restarted(0)
	n, err := warm.WarmKeyCache(ctx)
	if err != nil || n != 5 {
		t.Fatalf("WarmKeyCache = %d, %v; want the 5 usable versions (k0, k2 v2, k3, k4, k5)", n, err)
	}
	if st := warm.proj.KeyCacheStats(); st.Size != 5 || st.Primes != 5 || st.Hits+st.Misses != 0 {
		t.Errorf("key cache after the warm-up: %d versions, %d primes, %d lookups; want 5, 5 and none",
			st.Size, st.Primes, st.Hits+st.Misses)
	}
	before := warm.proj.KeyCacheStats()
	for _, name := range []string{"k0", "k2", "k5"} {
		if _, _, err := warm.proj.Key(ctx, "e1", name, 0); err != nil {
			t.Fatalf("Key(%s) err = %v", name, err)
		}
	}
	if st := warm.proj.KeyCacheStats(); st.Misses != before.Misses || st.Hits != before.Hits+3 {
		t.Errorf("after the warm-up, 3 uses made %d hits and %d misses, want 3 and 0",
			st.Hits-before.Hits, st.Misses-before.Misses)
	}
	if n, err := warm.WarmKeyCache(ctx); err != nil || n != 0 {
		t.Errorf("a second WarmKeyCache = %d, %v; want 0 (all cached)", n, err)
	}

	small := restarted(3)
	if n, err := small.WarmKeyCache(ctx); err != nil || n != 3 {
		t.Errorf("WarmKeyCache with room for 3 = %d, %v; want 3", n, err)
	}
	if st := small.proj.KeyCacheStats(); st.Size != 3 || st.Evictions != 0 {
		t.Errorf("key cache of 3 after the warm-up: %d versions, %d evictions; want 3 and none", st.Size, st.Evictions)
	}

	stopped := restarted(0)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if n, err := stopped.WarmKeyCache(cctx); err == nil || n != 0 {
		t.Errorf("WarmKeyCache with its context ended = %d, %v; want 0 and an error", n, err)
	}
}

// TestWarmKeyCacheRefusesPlantedMaterial: someone who can write the
// streams replaces k1's material by k0's under k1's reference. The
// warm-up caches k0, and not k1: the material does not open under k1's
// associated data.
func TestWarmKeyCacheRefusesPlantedMaterial(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := benchHandler(t)
	refs := map[string]string{}
	for _, name := range []string{"k0", "k1"} {
		if _, err := h.Run(ctx, testRoot, "", CreateKey{Enclave: "e1", Name: name}); err != nil {
			t.Fatal(err)
		}
		h.proj.View(func(s *projections.State) {
			k := s.Enclaves["e1"].Keys[name]
			refs[name] = k.Version(1).SecretRef("e1", name)
		})
	}
	k0, err := h.store.GetSecret(ctx, refs["k0"])
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.EraseSecret(ctx, refs["k1"]); err != nil {
		t.Fatal(err)
	}
	if err := h.store.PutSecret(ctx, refs["k1"], k0); err != nil {
		t.Fatal(err)
	}
	proj, err := projections.Open(ctx, h.store, h.rek, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proj.Close)
	warm := NewHandler(h.store, proj, h.rek, nil)
	if n, err := warm.WarmKeyCache(ctx); err != nil || n != 1 {
		t.Fatalf("WarmKeyCache = %d, %v; want 1 (k0 only)", n, err)
	}
	if st := proj.KeyCacheStats(); st.Size != 1 {
		t.Fatalf("key cache holds %d versions, want k0 alone", st.Size)
	}
	if _, _, err := proj.Key(ctx, "e1", "k1", 0); err == nil {
		t.Error("k1 opened from k0's material")
	}
}
