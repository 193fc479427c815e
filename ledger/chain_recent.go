package ledger

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Expectations a single node decides itself.
//
// JetStream stores every header it checks with the message: on a single
// node a key creation carried Nats-Expected-Last-Subject-Sequence (40
// bytes) and, as a pipelined member, Nats-Expected-Last-Msg-Id (46
// bytes), a fifth of a million keys' data directory. A single node is
// the only writer of its streams (the directory's lock), its chain head
// stores every message (c.mu), and the server stores the messages of one
// connection in the order it sent them (one queue per stream). So the
// head can prove both expectations itself, when it knows enough, and
// leaves them to the server otherwise:
//
//   - The subject's. Append passes, in expectAtHeader, the stream
//     sequence at which the caller read the subject's last sequence (a
//     projection's; Expect.At). If the head wrote the subject in none of
//     the messages after that sequence, the subject's last sequence is
//     still the one expected, and the header is left out of the message
//     sent. The head knows the subjects of the last recentSubjects
//     messages it stored itself since it was loaded (recentWrites); an
//     older sequence, a gap, or a subject written since keeps the header,
//     and the server decides as before.
//   - The binding of a pipelined member to the message id of the member
//     before it (groupPipe.send). It guards against a message sent before
//     the head was loaded, whose answer never came, being stored after
//     the load in a member's place. Once a message sent after the load
//     has its answer, every message sent before it was processed first,
//     so none can still come; from then on (chainHead.answered) the
//     members carry only their expected last sequence, which each still
//     needs (a refused member must refuse those after it).

// expectAtHeader carries Expect.At from Append to the chain head. It is
// never sent: wire removes it.
const expectAtHeader = "Kmsledger-Expect-At"

// recentSubjects bounds the subjects a chain head remembers: enough for
// a projection some thousand events behind the head.
const recentSubjects = 4096

// recentWrites is what a single node's LEDGER head stored lately: every
// message in the window (start, end], at most recentSubjects of them.
type recentWrites struct {
	decided, sent atomic.Uint64 // expectations with an At the head proved itself, and left to the server

	start, end uint64
	last       map[string]uint64 // subject → its last sequence in the window
	ring       []recentWrite     // the window's messages, oldest at ring[first]
	first      int
}

type recentWrite struct {
	seq     uint64
	subject string
}

func newRecentWrites() *recentWrites {
	return &recentWrites{last: make(map[string]uint64), ring: make([]recentWrite, 0, recentSubjects)}
}

// reset empties the window, which then starts after seq.
func (w *recentWrites) reset(seq uint64) {
	w.start, w.end = seq, seq
	clear(w.last)
	w.ring, w.first = w.ring[:0], 0
}

// add records that the message at seq, on subject, was stored. A
// sequence that does not follow the window's end starts a new window
// after it: the window never has a gap.
func (w *recentWrites) add(seq uint64, subject string) {
	if seq != w.end+1 {
		w.reset(seq)
		return
	}
	if len(w.ring) < cap(w.ring) {
		w.ring = append(w.ring, recentWrite{seq, subject})
	} else {
		old := w.ring[w.first]
		if w.last[old.subject] == old.seq {
			delete(w.last, old.subject)
		}
		w.start = old.seq
		w.ring[w.first] = recentWrite{seq, subject}
		w.first = (w.first + 1) % len(w.ring)
	}
	w.last[subject] = seq
	w.end = seq
}

// unwritten reports whether subject was provably not written after at,
// with head the stream's last stored sequence.
func (w *recentWrites) unwritten(subject string, at, head uint64) bool {
	return w.end == head && at >= w.start && at <= w.end && w.last[subject] <= at
}

// stored records the message at seq on subject, with c.mu held: it
// was stored as the head expected.
func (c *chainHead) stored(seq uint64, subject string) {
	c.answered = true
	if c.recent != nil {
		c.recent.add(seq, subject)
	}
}

// loaded starts what the head knows afresh after a load, with c.mu held.
func (c *chainHead) loaded() {
	c.answered = false
	if c.recent != nil {
		c.recent.reset(c.seq)
	}
}

// The headers wire leaves out of what it sends (unsent).
var (
	unsentAt        = []string{expectAtHeader}
	unsentAtSubject = []string{expectAtHeader, jetstream.ExpectedLastSubjSeqHeader}
)

// unsent returns the headers of msg that are not sent, with c.mu held and
// every message the head has sent since its last store on other subjects
// than msg's expectation (group.go, take): expectAtHeader, and the
// expectation on msg's subject if the head proves it; nil if msg has no
// expectAtHeader.
func (c *chainHead) unsent(msg *nats.Msg) []string {
	at := msg.Header.Get(expectAtHeader)
	if at == "" {
		return nil
	}
	proven := false
	if n, err := strconv.ParseUint(at, 10, 64); err == nil && c.recent != nil && !c.stale &&
		msg.Header.Get(jetstream.ExpectedLastSubjSeqSubjHeader) == "" &&
		c.recent.unwritten(msg.Subject, n, c.seq) {
		want, err := strconv.ParseUint(msg.Header.Get(jetstream.ExpectedLastSubjSeqHeader), 10, 64)
		proven = err == nil && want <= n
	}
	if c.recent != nil {
		if proven {
			c.recent.decided.Add(1)
		} else {
			c.recent.sent.Add(1)
		}
	}
	if proven {
		return unsentAtSubject
	}
	return unsentAt
}

// ExpectStats says, for the LEDGER appends since Open that gave
// Expect.At, how many expectations the chain head proved itself and how
// many it left to the server (chain_recent.go); both 0 unless this
// process is the streams' only writer.
func (s *Store) ExpectStats() (decided, sent uint64) {
	if c := s.chains.ledger; c != nil && c.recent != nil {
		return c.recent.decided.Load(), c.recent.sent.Load()
	}
	return 0, 0
}

// subjectMoved reports whether msg's own expectation on a subject (if
// it has one) no longer holds, asking the stream's leader; errors count
// as "moved", so that the caller's conflict is reported.
func (c *chainHead) subjectMoved(ctx context.Context, msg *nats.Msg) bool {
	want := msg.Header.Get(jetstream.ExpectedLastSubjSeqHeader)
	if want == "" {
		return false
	}
	subj := msg.Header.Get(jetstream.ExpectedLastSubjSeqSubjHeader)
	if subj == "" {
		subj = msg.Subject
	}
	var last uint64
	m, err := c.stream.GetLastMsgForSubject(ctx, subj)
	switch {
	case err == nil:
		last = m.Sequence
	case !errors.Is(err, jetstream.ErrMsgNotFound):
		return true
	}
	return strconv.FormatUint(last, 10) != want
}
