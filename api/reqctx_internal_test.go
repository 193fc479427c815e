package api

import (
	"context"
	"errors"
	"testing"
	"time"
)

type reqCtxKey struct{}

// TestReqContext: the request context keeps the request's values, is not
// cancelled with the client's context, reports its deadline, ends at it
// (Done, Err, children, AfterFunc), and ends as cancelled at end.
func TestReqContext(t *testing.T) {
	t.Parallel()
	client, clientGone := context.WithCancel(context.WithValue(context.Background(), reqCtxKey{}, "v"))
	deadline := time.Now().Add(50 * time.Millisecond)
	c := newReqContext(client, deadline)
	defer c.end()
	clientGone() // the client went away: the request goes on
	if got := c.Value(reqCtxKey{}); got != "v" {
		t.Fatalf("Value = %v, want the request's value", got)
	}
	if d, ok := c.Deadline(); !ok || !d.Equal(deadline) {
		t.Fatalf("Deadline = %v, %v, want %v, true", d, ok, deadline)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("Err before the deadline = %v, want nil", err)
	}
	if err := context.Cause(c); err != nil {
		t.Fatalf("Cause before the deadline = %v, want nil (not the client's)", err)
	}
	child, cancel := context.WithTimeout(c, time.Hour)
	defer cancel()
	fired := make(chan struct{})
	context.AfterFunc(c, func() { close(fired) })
	<-c.Done()
	<-child.Done()
	<-fired
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err after the deadline = %v, want DeadlineExceeded", err)
	}
	if err := child.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("child Err = %v, want DeadlineExceeded", err)
	}
}

// TestReqContextLazyDeadline: a context nobody waited on still reports
// DeadlineExceeded once its deadline passed, and Done is then closed.
func TestReqContextLazyDeadline(t *testing.T) {
	t.Parallel()
	c := newReqContext(context.Background(), time.Now().Add(-time.Millisecond))
	defer c.end()
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err past the deadline = %v, want DeadlineExceeded", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed past the deadline")
	}
	c.end()
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err after end = %v, want DeadlineExceeded (the deadline came first)", err)
	}
}

// TestReqContextEnd: end before the deadline ends the context as
// cancelled, whether or not its timer was made, and children follow.
func TestReqContextEnd(t *testing.T) {
	t.Parallel()
	for _, waited := range []bool{false, true} {
		c := newReqContext(context.Background(), time.Now().Add(time.Hour))
		var child context.Context
		if waited {
			var cancel context.CancelFunc
			child, cancel = context.WithCancel(c)
			defer cancel()
		}
		c.end()
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("waited=%v: Err after end = %v, want Canceled", waited, err)
		}
		<-c.Done()
		if child != nil {
			<-child.Done()
		}
	}
}
