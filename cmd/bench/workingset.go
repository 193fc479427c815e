package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
)

// workingKey is the name of key i of the working set.
func workingKey(i int) string { return fmt.Sprintf("bench-key-%07d", i) }

// workingEnclave is the enclave of key i of the working set.
func (d *kmsDriver) workingEnclave(i int) string {
	if d.spread <= 1 {
		return d.enclave
	}
	return spreadEnclave(d.enclave, i%d.spread)
}

// spreadEnclave is the name of enclave j of a spread working set.
func spreadEnclave(base string, j int) string { return fmt.Sprintf("%s-%04d", base, j) }

// workingEnclaves lists the enclaves of the working set.
func (d *kmsDriver) workingEnclaves() []string {
	if d.spread <= 1 {
		return []string{d.enclave}
	}
	out := make([]string, d.spread)
	for j := range out {
		out[j] = spreadEnclave(d.enclave, j)
	}
	return out
}

// pair runs pairIn on key i of the working set.
func (d *kmsDriver) pair(ctx context.Context, i int) error {
	return d.pairIn(ctx, d.workingEnclave(i), workingKey(i))
}

// pairIn generates a data key with key and decrypts its ciphertext, as an
// object store does on a PUT and a later GET.
func (d *kmsDriver) pairIn(ctx context.Context, enclave, key string) error {
	out, err := d.c.Send(ctx, enclave, []wire.Frame{generateFrameOf(key)})
	if err != nil {
		return err
	}
	var g wire.GenerateKeyResponse
	if len(out) != 1 || g.UnmarshalProto(out[0].Body) != nil {
		return fmt.Errorf("generate key %s: unexpected answer", key)
	}
	ct := g.Ciphertext
	if string(d.ct) == "canned" { // the bare server: its canned decrypt answers anything
		ct = d.ct
	}
	req := &wire.DecryptRequest{Name: key, Ciphertext: ct, AssociatedData: benchContext}
	out, err = d.c.Send(ctx, enclave, []wire.Frame{{Cmd: wire.CmdKeyDecrypt, Body: req.MarshalProto()}})
	if err == nil && len(out) != 1 {
		err = fmt.Errorf("decrypt with %s: %d answer frames", key, len(out))
	}
	return err
}

// createWorkingSet creates the keys of the working set that do not exist
// yet (it lists them first, so a second run reuses the set), from
// d.workers goroutines, reporting its progress every 10 s.
func (d *kmsDriver) createWorkingSet(ctx context.Context) error {
	if d.keys <= 0 {
		return nil
	}
	start := time.Now()
	for _, enclave := range d.workingEnclaves() {
		if err := d.c.CreateEnclave(ctx, enclave); err != nil && !errors.Is(err, client.ErrEnclaveExists) {
			return fmt.Errorf("working set: create enclave %s: %w", enclave, err)
		}
	}
	have, err := d.existing(ctx)
	if err != nil {
		return err
	}
	existed := 0
	for _, ok := range have {
		if ok {
			existed++
		}
	}
	created, err := d.forEach(ctx, "created", func(ctx context.Context, i int) error {
		if have[i] {
			return errSkip
		}
		err := d.c.CreateKey(ctx, d.workingEnclave(i), workingKey(i), "", false)
		if errors.Is(err, client.ErrKeyExists) {
			return errSkip
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("working set: %w", err)
	}
	fmt.Fprintf(d.out, "working set: %d keys (%d created, %d there already) in %s\n",
		d.keys, created, existed, time.Since(start).Round(time.Second))
	if !d.warm {
		return nil
	}
	start = time.Now()
	if _, err := d.forEach(ctx, "used", func(ctx context.Context, i int) error { return d.pair(ctx, i) }); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	fmt.Fprintf(d.out, "warm-up: one pair on each of the %d keys in %s\n", d.keys, time.Since(start).Round(time.Second))
	return nil
}

// errSkip: forEach's fn did nothing for this index.
var errSkip = errors.New("skip")

// existing lists the working set's enclaves for keys named like its
// keys and marks which of its indexes exist (in the enclave they belong
// in).
func (d *kmsDriver) existing(ctx context.Context) ([]bool, error) {
	have := make([]bool, d.keys)
	for _, enclave := range d.workingEnclaves() {
		if err := d.listExisting(ctx, enclave, have); err != nil {
			return nil, err
		}
	}
	return have, nil
}

// listExisting marks in have the working set's keys found in enclave.
func (d *kmsDriver) listExisting(ctx context.Context, enclave string, have []bool) error {
	next := ""
	for {
		page, err := d.c.ListKeys(ctx, enclave, "bench-key-", next, 1000)
		if err != nil {
			return fmt.Errorf("working set: list keys of %s: %w", enclave, err)
		}
		for _, k := range page.Keys {
			var i int
			if _, err := fmt.Sscanf(k.Name, "bench-key-%07d", &i); err == nil && i >= 0 && i < d.keys && workingKey(i) == k.Name && d.workingEnclave(i) == enclave {
				have[i] = true
			}
		}
		if page.ContinueAt == "" || len(page.Keys) == 0 {
			return nil
		}
		next = page.ContinueAt
	}
}

// forEach calls fn for every index of the working set from d.workers
// goroutines, reporting progress every 10 s; it returns how many calls
// did something (did not return errSkip), or the first error.
func (d *kmsDriver) forEach(ctx context.Context, verb string, fn func(context.Context, int) error) (int64, error) {
	var next, done atomic.Int64
	var failed atomic.Pointer[error]
	stop := d.progress(verb, time.Now(), &next, &done)
	defer stop()
	var wg sync.WaitGroup
	for range max(d.workers, 1) {
		wg.Go(func() {
			for failed.Load() == nil && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= d.keys {
					return
				}
				switch err := fn(ctx, i); {
				case err == nil:
					done.Add(1)
				case !errors.Is(err, errSkip):
					err = fmt.Errorf("key %s: %w", workingKey(i), err)
					failed.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return done.Load(), *e
	}
	return done.Load(), ctx.Err()
}

// progress prints the working set's creation every 10 s until stopped.
func (d *kmsDriver) progress(verb string, start time.Time, next, done *atomic.Int64) (stop func()) {
	quit := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				c := done.Load()
				fmt.Fprintf(d.out, "working set: %d of %d keys (%d %s, %.0f/s)\n", min(next.Load(), int64(d.keys)), d.keys,
					c, verb, float64(c)/time.Since(start).Seconds())
			}
		}
	}()
	return func() { close(quit) }
}
