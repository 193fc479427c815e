// Group commit.
//
// A single server's writes are acknowledged once the record is written
// to its block file, and reported to the caller once the block is
// fsynced (durability.go): concurrent writers share that fsync. Appends
// to a chained stream (LEDGER, AUDIT) are also serialised by the head's
// mutex (chain.go), so one append waiting for its ack would hold up the
// others. A groupQueue coalesces them: callers queue their message and
// wait; one goroutine takes the waiting messages (up to maxGroup, in
// arrival order) and publishes them as consecutive links without
// waiting for each ack (chain_group.go), then collects the acks. Each
// caller is answered with its own ack or error, and Append reports it
// only after the fsync, so a nil error still means "on disk".
//
// On a single server a group is extended while its acks come back: the
// messages queued meanwhile are published as its next links as soon as
// they arrive (as long as every member so far was stored as expected),
// and each member is answered as soon as its own ack is in, so that its
// fsync can start while later members are still on their way.
//
// Every message keeps its own checks inside a group: its Nats-Msg-Id,
// its expected last sequence on a subject and its own Prev header and
// place in the chain, all checked by the server message by message. A
// group never holds a message whose expectation subject is written by an
// earlier message of the group, nor two messages with one message id:
// such a message starts the next group, so that it is decided against
// the stream with the earlier one stored. On a single server each member
// after the first also expects its predecessor's message id as the
// stream's last, so it is stored only right after that member, never
// after a message that took the member's place (chain_group.go, send); a
// cluster publishes the members one by one (chain_group.go, commitGroup).
// Once a message sent since the head's last load has its answer, no
// message sent before can still be stored, and the members after the
// first expect only the last sequence (chain_recent.go).
// When a member is refused (its
// expectation fails, it is a duplicate), the later members, whose
// stream expectation then fails too, are published again one by one, as
// without grouping: a failing member gets the error it gets alone and
// the others are stored.

package ledger

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxGroup bounds the messages of one group.
const maxGroup = 256

// groupReq is one queued message and, once done is closed, its outcome.
type groupReq struct {
	ctx   context.Context
	msg   *nats.Msg
	sum   Sum  // msg's body digest (RawMessage.bodySum), by the caller: not in the one goroutine that stores
	taken bool // in a group being stored: the caller must wait for done
	ack   *jetstream.PubAck
	err   error
	done  chan struct{} // closed by settle once ack or err is set
}

// leaf is leaf_n of r's message stored at seq.
func (r *groupReq) leaf(seq uint64) Sum {
	return leafHash(seq, r.msg.Subject, r.msg.Header.Get(TypeHeader), r.msg.Header.Get(nats.MsgIdHdr), r.sum)
}

// settle answers r's caller; ack or err must be set.
func (r *groupReq) settle() { close(r.done) }

// groupCursor is what the members taken into a group so far rule out
// for the next ones (see take).
type groupCursor struct {
	n        int
	subjects map[string]bool
	ids      map[string]bool
}

// groupQueue coalesces concurrent publishes into groups; commit stores
// one group, which it may extend with more(), settles every member and
// returns how many there were.
type groupQueue struct {
	commit func(group []*groupReq, more func() []*groupReq) int

	mu      sync.Mutex
	pending []*groupReq
	running bool          // a goroutine is draining pending
	arrived chan struct{} // a message was queued while running (capacity 1)

	groups  atomic.Uint64 // groups stored
	members atomic.Uint64 // messages in them
	largest atomic.Uint64 // members of the largest group
}

// submit queues msg and returns its ack once its group is stored. A
// caller whose ctx ends before its message was taken into a group gets
// ctx's error and nothing is written; once taken, it waits for the
// outcome, so that an error never hides a stored message.
func (q *groupQueue) submit(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	raw := RawMessage{Subject: msg.Subject, Type: msg.Header.Get(TypeHeader), Body: msg.Data}
	r := &groupReq{ctx: ctx, msg: msg, sum: raw.bodySum(), done: make(chan struct{})}
	q.mu.Lock()
	q.pending = append(q.pending, r)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		go q.drain()
	} else {
		select {
		case q.arrived <- struct{}{}:
		default:
		}
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		q.mu.Lock()
		if !r.taken {
			for i, p := range q.pending {
				if p == r {
					q.pending = append(q.pending[:i], q.pending[i+1:]...)
					break
				}
			}
			q.mu.Unlock()
			return nil, ctx.Err()
		}
		q.mu.Unlock()
		<-r.done
	}
	return r.ack, r.err
}

// drain stores groups until the queue is empty.
func (q *groupQueue) drain() {
	for {
		cur := &groupCursor{subjects: map[string]bool{}, ids: map[string]bool{}}
		q.mu.Lock()
		group := q.take(cur)
		if len(group) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		more := func() []*groupReq {
			q.mu.Lock()
			defer q.mu.Unlock()
			return q.take(cur)
		}
		q.groups.Add(1)
		n := uint64(q.commit(group, more))
		q.members.Add(n)
		if n > q.largest.Load() {
			q.largest.Store(n) // only drain writes it, one at a time
		}
	}
}

// take removes the next members of a group from pending, with q.mu
// held: the longest prefix in which no message expects a subject an
// earlier member of the group (cur) writes and no message id repeats,
// up to maxGroup members in all.
func (q *groupQueue) take(cur *groupCursor) []*groupReq {
	var group []*groupReq
	n := 0
	for _, r := range q.pending {
		if cur.n == maxGroup {
			break
		}
		id := r.msg.Header.Get(jetstream.MsgIDHeader)
		if id != "" && cur.ids[id] {
			break
		}
		if x := expectSubject(r.msg); x != "" && matchesAny(x, cur.subjects) {
			break
		}
		if id != "" {
			cur.ids[id] = true
		}
		cur.subjects[r.msg.Subject] = true
		cur.n++
		r.taken = true
		group = append(group, r)
		n++
	}
	q.pending = append(q.pending[:0], q.pending[n:]...)
	return group
}

// expectSubject is the subject (or filter) msg's expected last subject
// sequence is checked on, "" if it has none.
func expectSubject(msg *nats.Msg) string {
	if msg.Header.Get(jetstream.ExpectedLastSubjSeqHeader) == "" {
		return ""
	}
	if s := msg.Header.Get(jetstream.ExpectedLastSubjSeqSubjHeader); s != "" {
		return s
	}
	return msg.Subject
}

// matchesAny reports whether filter (which may hold the wildcards "*"
// and ">") matches one of subjects.
func matchesAny(filter string, subjects map[string]bool) bool {
	if !strings.ContainsAny(filter, "*>") {
		return subjects[filter]
	}
	ft := strings.Split(filter, ".")
	for s := range subjects {
		if subjectMatches(ft, strings.Split(s, ".")) {
			return true
		}
	}
	return false
}

// subjectMatches is NATS subject matching of tokens against a filter's.
func subjectMatches(filter, subject []string) bool {
	for i, f := range filter {
		if f == ">" {
			return len(subject) > i
		}
		if i >= len(subject) || (f != "*" && f != subject[i]) {
			return false
		}
	}
	return len(filter) == len(subject)
}

// GroupStats says how LEDGER appends were grouped since Open: groups
// stored, the appends in them, and the size of the largest group.
func (s *Store) GroupStats() (groups, appends, largest uint64) {
	c := s.chains.ledger
	if c == nil || c.q == nil {
		return 0, 0, 0
	}
	return c.q.groups.Load(), c.q.members.Load(), c.q.largest.Load()
}
