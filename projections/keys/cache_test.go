package keys_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger/ledgertest"
	"github.com/kmsledger/kmsledger/projections"
)

// roundTrip generates a data key under enclave/name and decrypts it.
func (n *node) roundTrip(ctx context.Context, enclave, name string) error {
	ad := []byte("bucket/object")
	dk, err := n.svc.GenerateDataKey(ctx, enclave, name, 0, ad, 0)
	if err != nil {
		return err
	}
	pt, err := n.svc.Decrypt(ctx, enclave, name, 0, dk.Ciphertext, ad)
	if err != nil {
		return err
	}
	if !bytes.Equal(pt, dk.Plaintext) {
		return fmt.Errorf("%s/%s: decrypted another data key", enclave, name)
	}
	return nil
}

// The cache holds at most its capacity of unsealed versions (a new key
// is put in as it is created, pushing older ones out); a version evicted
// is unsealed again when used (a miss), and its uses are still counted.
func TestKeyCacheIsBounded(t *testing.T) {
	n := newNodeOn(t, ledgertest.Open(t), projections.Options{KeyCache: 2})
	ctx := context.Background()
	for i := range 5 {
		n.run(commands.CreateKey{Enclave: "e", Name: fmt.Sprintf("k%d", i)})
	}
	if s := n.proj.KeyCacheStats(); s.Size != 2 || s.Misses != 0 || s.Hits != 0 || s.Evictions != 3 {
		t.Fatalf("after creating 5 keys: %+v, want size 2, no miss or hit, 3 evictions", s)
	}
	for i := range 5 {
		if err := n.roundTrip(ctx, "e", fmt.Sprintf("k%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	s := n.proj.KeyCacheStats()
	if s.Capacity != 2 || s.Size != 2 || s.Misses != 5 || s.Hits != 5 || s.Evictions != 8 {
		t.Fatalf("after 5 keys used twice each: %+v, want capacity 2, size 2, 5 misses, 5 hits, 8 evictions", s)
	}
	if err := n.roundTrip(ctx, "e", "k0"); err != nil { // evicted: unsealed again
		t.Fatal(err)
	}
	s2 := n.proj.KeyCacheStats()
	if s2.Size != 2 || s2.Misses != s.Misses+1 || s2.Evictions != s.Evictions+1 {
		t.Fatalf("using the evicted k0: %+v, want one more miss and eviction than %+v", s2, s)
	}
	_, v, err := n.svc.Key(ctx, "e", "k0", 0)
	if err != nil {
		t.Fatal(err)
	}
	if u := v.Usage(); u.Encryptions != 2 || u.Decryptions != 2 {
		t.Errorf("usage of k0 across an eviction = %+v, want 2 encryptions, 2 decryptions", u)
	}
}

// Invalid cache sizes are refused by the configuration; a Projection
// opened with 0 gets the default.
func TestKeyCacheDefault(t *testing.T) {
	n := newNodeOn(t, ledgertest.Open(t), projections.Options{})
	if c := n.proj.KeyCacheStats().Capacity; c != projections.DefaultKeyCache {
		t.Fatalf("capacity %d, want %d", c, projections.DefaultKeyCache)
	}
}

// A version that is disabled, scheduled for deletion or destroyed (also
// with its enclave) leaves the cache as the event is applied; a status
// request on a disabled version unseals it without caching it.
func TestKeyCacheDropsUnusableVersions(t *testing.T) {
	n := newNodeOn(t, ledgertest.Open(t), projections.Options{KeyCache: 10})
	ctx := context.Background()
	n.run(commands.CreateKey{Enclave: "e", Name: "k"})
	n.run(commands.CreateKey{Enclave: "e", Name: "k", AddVersion: true})
	n.run(commands.CreateKey{Enclave: "e2", Name: "x"})
	use := func(enclave, name string, version uint32) {
		t.Helper()
		if _, _, err := n.svc.Encrypt(ctx, enclave, name, version, []byte("pt"), nil); err != nil {
			t.Fatal(err)
		}
	}
	size := func(when string, want int) {
		t.Helper()
		if s := n.proj.KeyCacheStats(); s.Size != want {
			t.Fatalf("%s: %d versions cached, want %d", when, s.Size, want)
		}
	}
	use("e", "k", 1)
	use("e", "k", 2)
	use("e2", "x", 0)
	size("three versions used", 3)
	n.run(commands.DisableKey{Enclave: "e", Name: "k", Version: 1})
	size("v1 disabled", 2)
	if _, _, err := n.svc.Key(ctx, "e", "k", 1); err != nil {
		t.Fatal(err)
	}
	size("status of the disabled v1", 2)
	n.run(commands.EnableKey{Enclave: "e", Name: "k", Version: 1})
	use("e", "k", 1)
	size("v1 enabled and used", 3)
	n.run(commands.DisableKey{Enclave: "e", Name: "k"})
	size("k disabled", 1)
	n.run(commands.EnableKey{Enclave: "e", Name: "k"})
	use("e", "k", 2)
	size("k enabled, v2 used", 2)
	n.run(commands.ScheduleKeyDeletion{Enclave: "e", Name: "k", Deadline: time.Now().Add(time.Hour)})
	size("k pending deletion", 1)
	n.run(commands.RestoreKey{Enclave: "e", Name: "k"})
	use("e", "k", 2)
	n.run(commands.DeleteKey{Enclave: "e", Name: "k", Version: 2})
	size("v2 destroyed", 1)
	n.run(commands.DeleteEnclave{Name: "e2"})
	size("enclave e2 deleted", 0)
}

// Under -race: many requests over more keys than the cache holds, while
// keys are disabled and enabled. Every answer is right or "disabled", the
// cache never holds more than its capacity, and once every key is
// disabled it holds nothing (no unsealing that raced a disable kept its
// result).
func TestKeyCacheConcurrent(t *testing.T) {
	const keys, capacity = 12, 4
	n := newNodeOn(t, ledgertest.Open(t), projections.Options{KeyCache: capacity})
	ctx := context.Background()
	for i := range keys {
		n.run(commands.CreateKey{Enclave: "e", Name: fmt.Sprintf("k%d", i)})
	}
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 6 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range 60 {
				err := n.roundTrip(ctx, "e", fmt.Sprintf("k%d", r.IntN(keys)))
				if err != nil && !errors.Is(err, projections.ErrKeyDisabled) {
					errc <- err
					return
				}
				if s := n.proj.KeyCacheStats(); s.Size > capacity {
					errc <- fmt.Errorf("%d versions cached, capacity %d", s.Size, capacity)
					return
				}
			}
		})
	}
	for i := range 10 {
		name := fmt.Sprintf("k%d", i%3)
		n.run(commands.DisableKey{Enclave: "e", Name: name})
		n.run(commands.EnableKey{Enclave: "e", Name: name})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for i := range keys {
		n.run(commands.DisableKey{Enclave: "e", Name: fmt.Sprintf("k%d", i)})
	}
	if s := n.proj.KeyCacheStats(); s.Size != 0 || s.Misses == 0 || s.Evictions == 0 {
		t.Fatalf("every key disabled: %+v, want nothing cached after misses and evictions", s)
	}
}
