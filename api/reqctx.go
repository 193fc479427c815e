package api

import (
	"context"
	"sync"
	"time"
)

// reqContext is the context of an admitted request: it carries the
// values of the request's context, is not cancelled when the client goes
// away (context.WithoutCancel), and ends at the route's deadline
// (context.WithDeadline). It behaves exactly like
//
//	context.WithDeadline(context.WithoutCancel(parent), deadline)
//
// but costs one allocation and no runtime timer for the many requests
// whose handler never waits on Done (a data key is computed, not waited
// for): the timer context is made the first time Done, AfterFunc or an
// Err at or past the deadline asks for it. end releases it.
type reqContext struct {
	parent   context.Context // WithoutCancel(the request's context): its values only
	deadline time.Time

	mu     sync.Mutex
	inner  context.Context // the timer context, once made
	cancel context.CancelFunc
	ended  bool // end ran before the deadline (and before inner was made)
}

func newReqContext(parent context.Context, deadline time.Time) *reqContext {
	return &reqContext{parent: context.WithoutCancel(parent), deadline: deadline}
}

// timer returns the timer context, making it on first use: one that ends
// at the deadline, or, after end, one that has ended (context.Canceled).
func (c *reqContext) timer() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inner == nil {
		base := c.parent
		if c.ended {
			c.inner, c.cancel = context.WithCancel(base)
			c.cancel()
		} else {
			c.inner, c.cancel = context.WithDeadline(base, c.deadline)
		}
	}
	return c.inner
}

// Deadline implements context.Context.
func (c *reqContext) Deadline() (time.Time, bool) { return c.deadline, true }

// Done implements context.Context.
func (c *reqContext) Done() <-chan struct{} { return c.timer().Done() }

// Err implements context.Context: nil before the deadline and end,
// context.DeadlineExceeded from the deadline on, context.Canceled when
// end came first.
func (c *reqContext) Err() error {
	c.mu.Lock()
	inner, ended := c.inner, c.ended
	c.mu.Unlock()
	switch {
	case inner != nil:
		return inner.Err()
	case ended:
		return context.Canceled
	case !time.Now().Before(c.deadline):
		return context.DeadlineExceeded
	}
	return nil
}

// Value implements context.Context.
func (c *reqContext) Value(key any) any { return c.parent.Value(key) }

// AfterFunc lets context.WithCancel, WithTimeout and AfterFunc on a
// reqContext wait on it without a goroutine each.
func (c *reqContext) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(c.timer(), f)
}

// end ends the context (the request is over) and releases its timer, if
// one was made.
func (c *reqContext) end() {
	c.mu.Lock()
	cancel := c.cancel
	if c.inner == nil && time.Now().Before(c.deadline) {
		c.ended = true
	}
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}
