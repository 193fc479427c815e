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

// pair generates a data key with key and decrypts its ciphertext, as an
// object store does on a PUT and a later GET.
func (d *kmsDriver) pair(ctx context.Context, key string) error {
	out, err := d.c.Send(ctx, d.enclave, []wire.Frame{generateFrameOf(key)})
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
	out, err = d.c.Send(ctx, d.enclave, []wire.Frame{{Cmd: wire.CmdKeyDecrypt, Body: req.MarshalProto()}})
	if err == nil && len(out) != 1 {
		err = fmt.Errorf("decrypt with %s: %d answer frames", key, len(out))
	}
	return err
}

// createWorkingSet creates the keys of the working set that do not exist
// yet, from d.workers goroutines, and reports its progress every 10 s.
// A key that exists already is taken as it is: a second run reuses the set.
func (d *kmsDriver) createWorkingSet(ctx context.Context) error {
	if d.keys <= 0 {
		return nil
	}
	var next, created, existed atomic.Int64
	var failed atomic.Pointer[error]
	start := time.Now()
	stop := d.progress(start, &next, &created, &existed)
	defer stop()
	var wg sync.WaitGroup
	for range max(d.workers, 1) {
		wg.Go(func() {
			for failed.Load() == nil && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= d.keys {
					return
				}
				err := d.c.CreateKey(ctx, d.enclave, workingKey(i), "", false)
				switch {
				case err == nil:
					created.Add(1)
				case errors.Is(err, client.ErrKeyExists):
					existed.Add(1)
				default:
					err = fmt.Errorf("create key %s: %w", workingKey(i), err)
					failed.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return *e
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "working set: %d keys (%d created, %d there already) in %s\n",
		d.keys, created.Load(), existed.Load(), time.Since(start).Round(time.Second))
	return nil
}

// progress prints the working set's creation every 10 s until stopped.
func (d *kmsDriver) progress(start time.Time, next, created, existed *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				c := created.Load()
				fmt.Fprintf(d.out, "working set: %d of %d keys (%d created, %.0f/s)\n", min(next.Load(), int64(d.keys)), d.keys,
					c, float64(c)/time.Since(start).Seconds())
			}
		}
	}()
	return func() { close(done) }
}
