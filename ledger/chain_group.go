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
	if !c.clustered {
		// Its own context: awaitPending waits for this chain's
		// asynchronous publishes only.
		if own, err := jetstream.New(js.Conn()); err == nil {
			js = own
		}
	}
	c.q = &groupQueue{arrived: make(chan struct{}, 1)}
	c.q.commit = func(g []*groupReq, more func() []*groupReq) int { return c.commitGroup(js, g, more) }
}

// commitGroup stores a group of links: on a single server pipelined
// (publishGroup), then each member the pipeline did not settle alone
// (publishLocked), as without grouping. It returns the number of
// members.
//
// A cluster publishes every member alone. A pipelined member must be
// bound to the member before it (see groupPipe.send), and the server
// checks that binding (Nats-Expected-Last-Msg-Id) again on every
// replica as it applies its Raft log: a replica restarted after kill -9
// re-applied an entry it had already stored, found another last message
// id, and stopped the stream with a "critical write error". Without the
// binding a pipeline may chain a member over a message that took its
// predecessor's place (a late publish, another node still writing),
// which broke the LEDGER chain after a leader's kill -9. A single
// publish expects only the head it chains to, which is safe both ways.
func (c *chainHead) commitGroup(js jetstream.JetStream, group []*groupReq, more func() []*groupReq) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	rest, n := group, len(group)
	if !c.clustered {
		rest, n = c.publishGroup(js, group, more)
	}
	for _, r := range rest {
		r.ack, r.err = c.publishLocked(r.ctx, js, r.msg, true)
		r.settle()
	}
	return n
}

// groupWait bounds the wait for each ack of a pipelined group (only a
// single server pipelines). The embedded server answers every publish
// unless it is gone, when the futures fail at once; a wait that ends
// first leaves the member's outcome unknown, its publish maybe stored
// later, so the wait is as long as a request's deadline: a stall of the
// disk of a few seconds delays the members, and does not fail them.
const groupWait = 30 * time.Second

// publishGroup publishes the members of group one after the other
// without waiting for each ack: member i is link head+i+1, with its
// Prev header and the expected last stream sequence head+i, so the
// server stores it only right after member i-1. It then collects the
// acks in order; the messages queued meanwhile
// (more) are published as the next members while every member so far
// was stored as expected. Members stored as expected are settled at
// once; from the first member that is not (its own expectation failed,
// a duplicate, …) on, every later member's stream expectation fails too
// and nothing of them is stored: publishGroup returns them (rest), to be
// published alone, where each gets the answer it gets without grouping.
// A member whose outcome is unknown (no ack in time) is settled with
// that error (the caller looks its event up, as after any lost answer).
// n is the number of members, group and the ones taken from more. Only a
// single server pipelines (commitGroup).
func (c *chainHead) publishGroup(js jetstream.JetStream, group []*groupReq, more func() []*groupReq) (rest []*groupReq, n int) {
	if c.needsLoad() {
		c.awaitPending(js)
		if err := c.loadWait(group[0].ctx); err != nil {
			return group, len(group)
		}
	}
	p := &groupPipe{js: js, c: c, seq: c.seq, sum: c.sum, sent: true}
	p.send(group)
	arrived := c.q.arrived
	timeout := time.NewTimer(c.ackWait())
	defer timeout.Stop()
	clean := true // every member so far stored in order, or refused
	for i := 0; i < len(p.futures); i++ {
		r, f := p.members[i], p.futures[i]
		var ack *jetstream.PubAck
		var err error
		select {
		case ack = <-f.Ok():
		case err = <-f.Err():
		case <-timeout.C:
			err = context.DeadlineExceeded
		case <-arrived:
			if clean && p.sent {
				p.send(more())
			}
			i--
			continue
		}
		timeout.Reset(c.ackWait())
		var again bool
		if clean, again = c.settleMember(r, ack, err, clean); again {
			rest = append(rest, r)
		}
	}
	return append(rest, p.members[len(p.futures):]...), len(p.members)
}

// ackWait is how long a pipelined member's answer is waited for.
func (c *chainHead) ackWait() time.Duration {
	if c.ackTimeout > 0 {
		return c.ackTimeout
	}
	return groupWait
}

// awaitPending waits until every message published on js asynchronously
// has its answer, or ackWait passes. A member whose answer did not come
// in time may still be stored: a head reloaded before it could be passed
// by it, and a member of the next group, bound only to the member before
// it by sequence and message id, chained over the wrong message (the late
// one and a retry of it share their message id).
func (c *chainHead) awaitPending(js jetstream.JetStream) {
	if js.PublishAsyncPending() == 0 {
		return
	}
	t := time.NewTimer(c.ackWait())
	defer t.Stop()
	select {
	case <-js.PublishAsyncComplete():
	case <-t.C:
	}
}

// publishAwait publishes msg alone on a single server and waits for its
// answer, until ctx ends or ackWait passes. It publishes asynchronously so
// that a publish left without an answer stays pending on js, and the next
// reload of the head waits for it (awaitPending), as for a group's.
func (c *chainHead) publishAwait(ctx context.Context, js jetstream.JetStream, msg *nats.Msg) (*jetstream.PubAck, error) {
	f, err := js.PublishMsgAsync(msg)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(c.ackWait())
	defer t.Stop()
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, context.DeadlineExceeded
	}
}

// groupPipe is the publishing side of publishGroup.
type groupPipe struct {
	js      jetstream.JetStream
	c       *chainHead // for wire
	seq     uint64     // last sequence once every member sent so far is stored
	sum     Sum        // chain value at seq
	members []*groupReq
	futures []jetstream.PubAckFuture // of members[:len(futures)]
	sent    bool                     // every member so far was sent
	lastID  string                   // message id of the last member sent
}

// send publishes rs as the next links without waiting for their acks.
// After a member that could not be sent, the others are only recorded:
// they are published alone.
//
// A member after the first expects, besides the last sequence, the
// message id of the member before it. The sequence alone binds its Prev
// header to that member only if nothing else can take the member's place
// when the member is refused: but a message whose publish had an
// unknown outcome (a timeout, an election) can still be stored after the
// head was reloaded without it, and another node may still believe it
// writes the stream. The message id makes the server refuse the member
// then (its Prev would chain over a message that is not there), and it
// is published again alone. A single node that is its streams' only
// writer binds members so only until a message sent since the head's
// last load has its answer (chainHead.answered, chain_recent.go).
func (p *groupPipe) send(rs []*groupReq) {
	for _, r := range rs {
		p.members = append(p.members, r)
		if !p.sent {
			continue
		}
		id := r.msg.Header.Get(nats.MsgIdHdr)
		if len(p.futures) == 0 || (p.c.sole && p.c.answered) {
			r.msg.Header.Del(jetstream.ExpectedLastMsgIDHeader)
		} else if p.lastID == "" || id == "" {
			p.sent = false // cannot be bound to the member before: alone
			continue
		} else {
			r.msg.Header.Set(jetstream.ExpectedLastMsgIDHeader, p.lastID)
		}
		r.msg.Header.Set(PrevHeader, p.sum.String())
		r.msg.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(p.seq, 10))
		f, err := p.js.PublishMsgAsync(p.c.wire(r.msg, p.sum))
		if err != nil {
			p.sent = false
			continue
		}
		p.futures = append(p.futures, f)
		p.lastID = id
		p.seq++
		p.sum = chainNext(p.sum, r.leaf(p.seq))
	}
}

// settleMember takes the outcome of member r of a pipelined group
// (publishGroup), clean if every member before it was stored in order
// or refused. It settles r, or reports that r must be published again
// alone (again); stillClean says whether the members after r can still
// be stored in order.
func (c *chainHead) settleMember(r *groupReq, ack *jetstream.PubAck, err error, clean bool) (stillClean, again bool) {
	var apiErr *jetstream.APIError
	switch {
	case clean && err == nil && !ack.Duplicate && ack.Sequence == c.seq+1:
		c.seq, c.sum = ack.Sequence, chainNext(c.sum, r.leaf(ack.Sequence))
		c.stored(ack.Sequence, r.msg.Subject)
		c.appended()
		r.ack = ack
		r.settle()
		return true, false
	case clean && err == nil && ack.Duplicate:
		r.ack = ack // stored before: nothing written, as alone
		r.settle()
		return false, false
	case errors.As(err, &apiErr) && !isUnknownOutcome(err):
		return false, true // refused: nothing stored
	case err == nil:
		// Stored, but not where the head expected it: cannot happen
		// with the expectations above; never chain past it.
		c.markStale()
		r.ack = ack
		r.settle()
		return false, false
	default:
		c.markStale()
		r.err = err
		r.settle()
		return false, false
	}
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
