package ledger

import (
	"context"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// pipeMsg builds the LEDGER message of a test event the way Append does.
func pipeMsg(t *testing.T, subject, cmd string) *nats.Msg {
	t.Helper()
	ev := testEvent(subject, cmd)
	body, err := encodeEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	msg := newMsg(ev, body)
	msg.Header.Set(jetstream.MsgIDHeader, ScopedMsgID(ev.Aggregate, ev.CommandID))
	return msg
}

// TestPipelinedMemberStoredOnlyAfterItsPredecessor: a message of a
// pipelined group is stored only right after the member before it, never
// after another message that took that member's place. Such a message is
// one whose publish had an unknown outcome (a timeout, an election) and
// that the server stored after the head was reloaded without it, or one
// of another node that still believed it wrote the stream. Before, the
// first member was refused (the stream had moved), the second matched
// the moved stream's last sequence and was stored with a Prev header
// chaining over the refused first member: a broken chain on disk, seen
// after a leader's kill -9 in a three-node cluster ("LEDGER seq 1310:
// message changed"). Now every member after the first also expects its
// predecessor's message id.
func TestPipelinedMemberStoredOnlyAfterItsPredecessor(t *testing.T) {
	s := openTestStore(t, "")
	ctx := context.Background()
	mustAppend(t, s, KeySubject("enc", "base"), 1)
	c := s.chains.ledger
	c.mu.Lock()
	staleSeq, staleSum := c.seq, c.sum
	c.mu.Unlock()

	// The late message: stored as the next link, as its own publish would
	// have stored it.
	late := pipeMsg(t, KeySubject("enc", "late"), "late-cmd")
	late.Header.Set(PrevHeader, staleSum.String())
	late.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(staleSeq, 10))
	if _, err := s.js.PublishMsg(ctx, late); err != nil {
		t.Fatalf("publish the late message: %v", err)
	}
	// The head as a reload that did not see it yet left it.
	c.mu.Lock()
	c.seq, c.sum, c.stale = staleSeq, staleSum, false
	c.loaded()
	c.mu.Unlock()

	group := []*groupReq{
		{ctx: ctx, msg: pipeMsg(t, KeySubject("enc", "first"), "first-cmd"), done: make(chan struct{})},
		{ctx: ctx, msg: pipeMsg(t, KeySubject("enc", "second"), "second-cmd"), done: make(chan struct{})},
	}
	c.commitGroup(s.js, group, func() []*groupReq { return nil })
	for i, r := range group {
		<-r.done
		if r.err != nil {
			t.Fatalf("member %d: %v (each is stored alone once the pipeline is refused)", i, r.err)
		}
	}
	if group[0].ack.Sequence != staleSeq+2 || group[1].ack.Sequence != staleSeq+3 {
		t.Fatalf("members stored at %d and %d, want %d and %d (after the late message at %d)",
			group[0].ack.Sequence, group[1].ack.Sequence, staleSeq+2, staleSeq+3, staleSeq+1)
	}
	if _, err := s.Verify(ctx, VerifyOptions{}); err != nil {
		t.Fatalf("chain after a pipeline that met a late message: %v", err)
	}
}
