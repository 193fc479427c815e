// Package hsmtest is the conformance suite every hsm.Wrapper backend must
// pass: round trips, associated-data binding, tamper and truncation
// detection, key separation, concurrent use, nonce uniqueness and, for
// backends with a Close method, a clean close.
//
// The close contract (checked only if the wrapper implements Closer):
// Close returns nil, waits for operations in flight, and is idempotent (a
// second Close returns nil too). Once Close has returned, Wrap and Unwrap
// fail with an error that is not hsm.ErrUnseal: a closed HSM is not a
// wrong key.
package hsmtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kmsledger/kmsledger/hsm"
)

// Wraps is the number of wraps of one plaintext in the nonce-uniqueness
// check; any repeated ciphertext fails the suite.
const Wraps = 4096

// Run runs the suite. newWrapper must return a wrapper over a fresh key
// each time it is called: two calls must give two different keys.
func Run(t *testing.T, newWrapper func(t *testing.T) hsm.Wrapper) {
	t.Helper()
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newWrapper(t)) })
	t.Run("WrongAAD", func(t *testing.T) { testWrongAAD(t, newWrapper(t)) })
	t.Run("Tampered", func(t *testing.T) { testTampered(t, newWrapper(t)) })
	t.Run("Truncated", func(t *testing.T) { testTruncated(t, newWrapper(t)) })
	t.Run("OtherKey", func(t *testing.T) { testOtherKey(t, newWrapper(t), newWrapper(t)) })
	t.Run("KeyID", func(t *testing.T) { testKeyID(t, newWrapper(t), newWrapper(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newWrapper(t)) })
	t.Run("NonceUniqueness", func(t *testing.T) { testNonceUniqueness(t, newWrapper(t)) })
	t.Run("Close", func(t *testing.T) { testClose(t, newWrapper(t)) })
	t.Run("CloseWhileBusy", func(t *testing.T) { testCloseWhileBusy(t, newWrapper(t)) })
}

// Closer is implemented by backends that hold resources (sessions,
// connections). See the package documentation for its contract.
type Closer interface {
	Close() error
}

func mustWrap(t *testing.T, w hsm.Wrapper, pt, aad []byte) []byte {
	t.Helper()
	ct, err := w.Wrap(context.Background(), pt, aad)
	if err != nil {
		t.Fatalf("Wrap(%d bytes) err = %v, want nil", len(pt), err)
	}
	return ct
}

func wantUnseal(t *testing.T, w hsm.Wrapper, ct, aad []byte, what string) {
	t.Helper()
	pt, err := w.Unwrap(context.Background(), ct, aad)
	if !errors.Is(err, hsm.ErrUnseal) {
		t.Errorf("Unwrap(%s) = %d bytes, err = %v, want ErrUnseal", what, len(pt), err)
	}
}

func testRoundTrip(t *testing.T, w hsm.Wrapper) {
	big := make([]byte, 4096)
	rand.Read(big)
	tests := []struct {
		name    string
		pt, aad []byte
	}{
		{"empty", nil, nil},
		{"empty plaintext with aad", nil, []byte("aad")},
		{"short", []byte("hello"), []byte("kmsledger/rek/v1")},
		{"32 random bytes", big[:32], nil},
		{"4 KiB", big, []byte{0, 1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct := mustWrap(t, w, tc.pt, tc.aad)
			if len(tc.pt) >= 16 && bytes.Contains(ct, tc.pt) {
				t.Errorf("Wrap output contains the plaintext")
			}
			got, err := w.Unwrap(context.Background(), ct, tc.aad)
			if err != nil {
				t.Fatalf("Unwrap(Wrap(pt)) err = %v, want nil", err)
			}
			if !bytes.Equal(got, tc.pt) {
				t.Errorf("Unwrap(Wrap(pt)) = %x, want %x", got, tc.pt)
			}
		})
	}
}

func testWrongAAD(t *testing.T, w hsm.Wrapper) {
	aad := []byte("ledger/enclave-a")
	ct := mustWrap(t, w, []byte("secret"), aad)
	for i := range len(aad) * 8 {
		other := bytes.Clone(aad)
		other[i/8] ^= 1 << (i % 8)
		wantUnseal(t, w, ct, other, fmt.Sprintf("aad bit %d flipped", i))
	}
	wantUnseal(t, w, ct, nil, "nil aad")
	wantUnseal(t, w, ct, aad[:len(aad)-1], "truncated aad")
	wantUnseal(t, w, ct, append(bytes.Clone(aad), 0), "extended aad")
}

func testTampered(t *testing.T, w hsm.Wrapper) {
	aad := []byte("aad")
	ct := mustWrap(t, w, []byte("short message"), aad)
	for i := range len(ct) * 8 {
		bad := bytes.Clone(ct)
		bad[i/8] ^= 1 << (i % 8)
		wantUnseal(t, w, bad, aad, fmt.Sprintf("bit %d flipped", i))
	}
	wantUnseal(t, w, append(bytes.Clone(ct), 0), aad, "byte appended")
}

func testTruncated(t *testing.T, w hsm.Wrapper) {
	aad := []byte("aad")
	ct := mustWrap(t, w, []byte("short message"), aad)
	for n := range len(ct) {
		wantUnseal(t, w, ct[:n], aad, fmt.Sprintf("first %d of %d bytes", n, len(ct)))
		wantUnseal(t, w, ct[n+1:], aad, fmt.Sprintf("last %d of %d bytes", len(ct)-n-1, len(ct)))
	}
}

func testOtherKey(t *testing.T, w1, w2 hsm.Wrapper) {
	aad := []byte("aad")
	for _, pt := range [][]byte{nil, []byte("secret"), make([]byte, 100)} {
		wantUnseal(t, w2, mustWrap(t, w1, pt, aad), aad, fmt.Sprintf("%d bytes from another key", len(pt)))
		wantUnseal(t, w1, mustWrap(t, w2, pt, aad), aad, fmt.Sprintf("%d bytes from another key", len(pt)))
	}
}

func testKeyID(t *testing.T, w1, w2 hsm.Wrapper) {
	id := w1.KeyID()
	if id == "" {
		t.Fatalf("KeyID() = %q, want non-empty", id)
	}
	mustWrap(t, w1, []byte("x"), nil)
	if got := w1.KeyID(); got != id {
		t.Errorf("KeyID() = %q after Wrap, want stable %q", got, id)
	}
	if w2.KeyID() == id {
		t.Errorf("two keys share KeyID %q", id)
	}
}

func testConcurrent(t *testing.T, w hsm.Wrapper) {
	const goroutines, rounds = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				pt := fmt.Appendf(nil, "goroutine %d round %d", g, i)
				aad := fmt.Appendf(nil, "aad %d", g)
				ct, err := w.Wrap(context.Background(), pt, aad)
				if err != nil {
					t.Errorf("goroutine %d: Wrap err = %v, want nil", g, err)
					return
				}
				got, err := w.Unwrap(context.Background(), ct, aad)
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("goroutine %d: Unwrap = %q, %v, want %q, nil", g, got, err, pt)
					return
				}
			}
		})
	}
	wg.Wait()
}

func testNonceUniqueness(t *testing.T, w hsm.Wrapper) {
	pt, aad := []byte("same plaintext every time"), []byte("same aad")
	seen := make(map[string]int, Wraps)
	for i := range Wraps {
		ct := string(mustWrap(t, w, pt, aad))
		if j, dup := seen[ct]; dup {
			t.Fatalf("Wrap %d returned the same ciphertext as wrap %d", i, j)
		}
		seen[ct] = i
	}
}

// wantClosedErr checks that err is the failure of an operation after
// Close: not nil, and not ErrUnseal.
func wantClosedErr(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil || errors.Is(err, hsm.ErrUnseal) {
		t.Errorf("%s after Close err = %v, want an error other than ErrUnseal", what, err)
	}
}

func testClose(t *testing.T, w hsm.Wrapper) {
	c, ok := w.(Closer)
	if !ok {
		t.Logf("%T has no Close method; nothing to check", w)
		return
	}
	aad := []byte("aad")
	ct := mustWrap(t, w, []byte("before close"), aad)
	if err := c.Close(); err != nil {
		t.Fatalf("Close() err = %v, want nil", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close() err = %v, want nil (Close is idempotent)", err)
	}
	_, err := w.Wrap(context.Background(), []byte("after close"), aad)
	wantClosedErr(t, err, "Wrap")
	_, err = w.Unwrap(context.Background(), ct, aad)
	wantClosedErr(t, err, "Unwrap")
	if w.KeyID() == "" {
		t.Errorf("KeyID() after Close = \"\", want the key ID")
	}
}

// testCloseWhileBusy closes the wrapper while goroutines use it. Every
// round trip must be correct until Close, and every call that starts
// after Close has returned must fail.
func testCloseWhileBusy(t *testing.T, w hsm.Wrapper) {
	c, ok := w.(Closer)
	if !ok {
		t.Logf("%T has no Close method; nothing to check", w)
		return
	}
	const goroutines = 8
	var (
		wg      sync.WaitGroup
		started sync.WaitGroup
		closing atomic.Bool // set before Close is called: errors are allowed
		closed  atomic.Bool // set after Close returned: success is not
	)
	started.Add(goroutines)
	for g := range goroutines {
		wg.Go(func() {
			first := true
			defer func() {
				if first {
					started.Done()
				}
			}()
			for i := 0; ; i++ {
				pt, aad := fmt.Appendf(nil, "goroutine %d round %d", g, i), fmt.Appendf(nil, "aad %d", g)
				after := closed.Load()
				ct, err := w.Wrap(context.Background(), pt, aad)
				if err != nil {
					if !closing.Load() || errors.Is(err, hsm.ErrUnseal) {
						t.Errorf("goroutine %d: Wrap err = %v, want nil before Close and not ErrUnseal after", g, err)
					}
					return
				}
				if after {
					t.Errorf("goroutine %d: Wrap started after Close returned and succeeded", g)
					return
				}
				after = closed.Load()
				got, err := w.Unwrap(context.Background(), ct, aad)
				if err != nil {
					if !closing.Load() || errors.Is(err, hsm.ErrUnseal) {
						t.Errorf("goroutine %d: Unwrap err = %v, want nil before Close and not ErrUnseal after", g, err)
					}
					return
				}
				if after {
					t.Errorf("goroutine %d: Unwrap started after Close returned and succeeded", g)
					return
				}
				if !bytes.Equal(got, pt) {
					t.Errorf("goroutine %d: Unwrap = %q, want %q", g, got, pt)
					return
				}
				if first {
					first = false
					started.Done()
				}
			}
		})
	}
	started.Wait()
	closing.Store(true)
	err := c.Close()
	closed.Store(true)
	wg.Wait()
	if err != nil {
		t.Errorf("Close() while busy err = %v, want nil", err)
	}
}
