package metrics

import (
	"context"
	"sync/atomic"

	"github.com/kmsledger/kmsledger/hsm"
)

// CountedHSM is an hsm.Wrapper that counts the calls of the one it wraps
// (an HSM call can cost money: cloud KMS requests, network HSMs). Its
// other methods are the wrapped one's; Unwrapped returns it for type
// checks (Close, ...).
type CountedHSM struct {
	hsm.Wrapper
	wrapOK, wrapFailed, unwrapOK, unwrapFailed atomic.Uint64
}

// CountHSM returns w counted.
func CountHSM(w hsm.Wrapper) *CountedHSM { return &CountedHSM{Wrapper: w} }

// Wrap implements hsm.Wrapper.
func (c *CountedHSM) Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	b, err := c.Wrapper.Wrap(ctx, plaintext, aad)
	if err != nil {
		c.wrapFailed.Add(1)
	} else {
		c.wrapOK.Add(1)
	}
	return b, err
}

// Unwrap implements hsm.Wrapper.
func (c *CountedHSM) Unwrap(ctx context.Context, ciphertext, aad []byte) ([]byte, error) {
	b, err := c.Wrapper.Unwrap(ctx, ciphertext, aad)
	if err != nil {
		c.unwrapFailed.Add(1)
	} else {
		c.unwrapOK.Add(1)
	}
	return b, err
}

// Unwrapped returns the wrapped HSM.
func (c *CountedHSM) Unwrapped() hsm.Wrapper { return c.Wrapper }

// Calls returns the counts so far.
func (c *CountedHSM) Calls() []HSMCalls {
	return []HSMCalls{
		{Op: "wrap", OK: c.wrapOK.Load(), Failed: c.wrapFailed.Load()},
		{Op: "unwrap", OK: c.unwrapOK.Load(), Failed: c.unwrapFailed.Load()},
	}
}
