package ledger

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startGroups sets up the group commit of c (group.go).
func (c *chainHead) startGroups(js jetstream.JetStream) {
	c.q = &groupQueue{commit: func(g []*groupReq) { c.commitGroup(js, g) }}
}

// commitGroup stores a group of links: pipelined (publishGroup), then
// each member the pipeline did not settle alone (publishLocked), as
// without grouping.
func (c *chainHead) commitGroup(js jetstream.JetStream, group []*groupReq) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rest := group
	if len(group) > 1 {
		rest = c.publishGroup(js, group)
	}
	for _, r := range rest {
		r.ack, r.err = c.publishLocked(r.ctx, js, r.msg, true)
	}
}

// groupWait bounds the wait for the acks of a pipelined group.
const groupWait = writerTimeout

// publishGroup publishes the members of group one after the other
// without waiting for each ack: member i is link head+i+1, with its
// Prev header and the expected last stream sequence head+i, so the
// server stores it only right after member i-1. It then collects the
// acks in order. Members stored as expected are settled; from the first
// member that is not (its own expectation failed, a duplicate, …) on,
// every later member's stream expectation fails too and nothing of them
// is stored: publishGroup returns them, to be published alone, where
// each gets the answer it gets without grouping. A member whose outcome
// is unknown (no ack in time) is settled with that error on a single
// server (the caller looks its event up, as after any lost answer) and
// returned to be published again in a cluster (publishLocked retries
// with the same message id).
func (c *chainHead) publishGroup(js jetstream.JetStream, group []*groupReq) (rest []*groupReq) {
	if c.stale {
		if err := c.loadWait(group[0].ctx); err != nil {
			return group
		}
	}
	seq, sum := c.seq, c.sum
	futures := make([]jetstream.PubAckFuture, 0, len(group))
	for _, r := range group {
		r.msg.Header.Set(PrevHeader, sum.String())
		r.msg.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(seq, 10))
		f, err := js.PublishMsgAsync(r.msg)
		if err != nil {
			break // not sent: this member and the next are published alone
		}
		futures = append(futures, f)
		seq++
		raw := RawMessage{Seq: seq, Subject: r.msg.Subject, Type: r.msg.Header.Get(TypeHeader),
			MsgID: r.msg.Header.Get(nats.MsgIdHdr), Body: r.msg.Data}
		sum = chainNext(sum, raw.Leaf())
	}
	timeout := time.NewTimer(groupWait)
	defer timeout.Stop()
	clean := true // every member so far stored in order, or refused
	for i, f := range futures {
		r := group[i]
		var ack *jetstream.PubAck
		var err error
		select {
		case ack = <-f.Ok():
		case err = <-f.Err():
		case <-timeout.C:
			err = context.DeadlineExceeded
		}
		var apiErr *jetstream.APIError
		switch {
		case clean && err == nil && !ack.Duplicate && ack.Sequence == c.seq+1:
			raw := RawMessage{Seq: ack.Sequence, Subject: r.msg.Subject, Type: r.msg.Header.Get(TypeHeader),
				MsgID: r.msg.Header.Get(nats.MsgIdHdr), Body: r.msg.Data}
			c.seq, c.sum = ack.Sequence, chainNext(c.sum, raw.Leaf())
			c.appended()
			r.ack = ack
		case clean && err == nil && ack.Duplicate:
			r.ack = ack // stored before: nothing written, as alone
			clean = false
		case errors.As(err, &apiErr) && !isUnknownOutcome(err):
			rest = append(rest, r) // refused: nothing stored
			clean = false
		case err == nil:
			// Stored, but not where the head expected it: cannot happen
			// with the expectations above; never chain past it.
			c.markStale()
			r.ack = ack
			clean = false
		default:
			c.markStale()
			clean = false
			if c.clustered {
				rest = append(rest, r)
			} else {
				r.err = err
			}
		}
	}
	return append(rest, group[len(futures):]...)
}

// appended publishes the new head and tells the Checkpointer (without
// blocking) that c moved; c.mu is held.
func (c *chainHead) appended() {
	c.setKnown()
	if c.notify != nil {
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
}
