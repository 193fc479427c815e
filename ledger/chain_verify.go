package ledger

import (
	"errors"
	"fmt"
)

// ErrTampered reports history that does not verify: a changed, dropped,
// inserted or reordered message, a bad checkpoint, or a cut-short
// stream. The error is a *TamperError naming the first bad sequence.
var ErrTampered = errors.New("ledger: history does not verify")

// TamperError is the detail of ErrTampered.
type TamperError struct {
	Stream string // "LEDGER" or "AUDIT"
	Seq    uint64 // first bad sequence
	Reason string
	Err    error // cause, if the store refused the message; may be nil
}

// Unwrap returns the cause.
func (e *TamperError) Unwrap() error { return e.Err }

// Error implements error.
func (e *TamperError) Error() string {
	return fmt.Sprintf("ledger: %s seq %d: %s", e.Stream, e.Seq, e.Reason)
}

// Is reports whether target is ErrTampered.
func (e *TamperError) Is(target error) bool { return target == ErrTampered }

// recentLinks is how many computed chain values the checker remembers to
// recognise inserted events (a Prev header pointing back further).
const recentLinks = 64

// linkChecker recomputes one stream's chain message by message. It works
// on (seq, Prev, leaf), so it checks a data directory and an export alike.
type linkChecker struct {
	stream  string
	seq     uint64 // last sequence added
	sum     Sum    // computed chain_seq
	prevSum Sum    // computed chain_{seq-1}
	chained bool   // a Prev header was seen: every later message needs one
	recent  map[Sum]uint64
	order   []Sum
	pend    *mismatch
	signed  map[uint64]Sum // signed chain values (checkpoints) by sequence
	// signedThrough is the last sequence whose chain value matched a
	// signed checkpoint.
	signedThrough uint64
}

// mismatch is a Prev header that differs from the computed chain: the
// next message tells whether the header or the message before is bad.
type mismatch struct {
	seq      uint64
	prev     Sum
	hasPrev  bool
	leaf     Sum
	computed Sum // computed chain_{seq-1}
}

func newLinkChecker(stream string) *linkChecker {
	return &linkChecker{stream: stream, recent: map[Sum]uint64{}, signed: map[uint64]Sum{}}
}

// start makes the checker begin after seq with chain value sum (a
// trusted Prev header or a signed value).
func (c *linkChecker) start(seq uint64, sum Sum) {
	c.seq, c.sum, c.chained = seq, sum, seq > 0
	c.remember(seq, sum)
}

func (c *linkChecker) bad(seq uint64, format string, args ...any) error {
	return &TamperError{Stream: c.stream, Seq: seq, Reason: fmt.Sprintf(format, args...)}
}

func (c *linkChecker) remember(seq uint64, sum Sum) {
	c.recent[sum] = seq
	c.order = append(c.order, sum)
	if len(c.order) > recentLinks {
		delete(c.recent, c.order[0])
		c.order = c.order[1:]
	}
}

// add checks the next message and extends the chain.
func (c *linkChecker) add(seq uint64, prevHex string, leaf Sum) error {
	switch {
	case seq == c.seq+1:
	case seq > c.seq+1:
		return c.bad(c.seq+1, "missing: the next message present is seq %d", seq)
	default:
		return c.bad(seq, "out of order: follows seq %d", c.seq)
	}
	if c.pend != nil {
		if err := c.resolve(prevHex); err != nil {
			return err
		}
	}
	if prevHex == "" {
		if c.chained {
			c.pend = &mismatch{seq: seq, leaf: leaf, computed: c.sum}
		}
	} else {
		prev, ok := parseSum(prevHex)
		if !ok {
			return c.bad(seq, "malformed %s header", PrevHeader)
		}
		c.chained = true
		if prev != c.sum {
			if j, ok := c.recent[prev]; ok {
				return c.bad(j+1, "events %d..%d were inserted: seq %d follows seq %d", j+1, seq-1, seq, j)
			}
			c.pend = &mismatch{seq: seq, prev: prev, hasPrev: true, leaf: leaf, computed: c.sum}
		}
	}
	c.seq, c.prevSum, c.sum = seq, c.sum, chainNext(c.sum, leaf)
	c.remember(seq, c.sum)
	if want, ok := c.signed[seq]; ok {
		delete(c.signed, seq)
		if want != c.sum && c.pend == nil {
			return c.bad(seq, "chain value differs from the signed checkpoint: this message was changed "+
				"(or, if the %s headers were rewritten, one in %d..%d)", PrevHeader, c.signedThrough+1, seq)
		}
		if want != c.sum {
			return c.bad(c.pend.seq, "does not follow seq %d, and the chain differs from the signed checkpoint", c.pend.seq-1)
		}
		c.signedThrough = seq
	}
	return nil
}

// resolve decides a pending mismatch with the Prev header of the message
// after it.
func (c *linkChecker) resolve(nextPrevHex string) error {
	p := c.pend
	c.pend = nil
	next, ok := parseSum(nextPrevHex)
	switch {
	case ok && next == chainNext(p.computed, p.leaf):
		// The computed chain goes on: only the header of p.seq is bad.
		return c.bad(p.seq, "%s header altered or removed", PrevHeader)
	case ok && p.hasPrev && next == chainNext(p.prev, p.leaf):
		// The stored chain goes on from p.prev: p.seq-1 was changed.
		return c.bad(p.seq-1, "message changed: its chain value is not the one the next message records")
	}
	return c.bad(p.seq, "does not follow seq %d: a message was changed, dropped, inserted or reordered here", p.seq-1)
}

// finish resolves what is pending at the end of the stream.
func (c *linkChecker) finish() error {
	if c.pend == nil {
		return nil
	}
	p := c.pend
	c.pend = nil
	return c.bad(p.seq, "does not follow seq %d: the last message, or the one before, was changed", p.seq-1)
}

// expect records a signed chain value of a sequence not yet reached;
// add compares it.
func (c *linkChecker) expect(seq uint64, chainHex string) error {
	sum, ok := parseSum(chainHex)
	switch {
	case !ok:
		return c.bad(seq, "signed chain value is not 64 hex digits")
	case seq == 0 && sum != Sum{}:
		return c.bad(1, "checkpoint of an empty stream has a non-zero chain value")
	case seq == 0:
		return nil
	case seq <= c.seq:
		return c.bad(seq, "checkpoint refers back to seq %d, already checked", seq)
	}
	if old, ok := c.signed[seq]; ok && old != sum {
		return c.bad(seq, "two checkpoints sign different chain values for seq %d", seq)
	}
	c.signed[seq] = sum
	return nil
}

// checkPrevious compares a signed chain value for the sequence before
// the last one added (a LEDGER checkpoint signs the head just before
// itself).
func (c *linkChecker) checkPrevious(chainHex string) error {
	sum, ok := parseSum(chainHex)
	if !ok {
		return c.bad(c.seq, "signed chain value is not 64 hex digits")
	}
	seq := c.seq - 1
	if seq == 0 {
		if sum != (Sum{}) {
			return c.bad(1, "checkpoint of an empty stream has a non-zero chain value")
		}
		return nil
	}
	if p := c.pend; p != nil && p.seq == c.seq {
		c.pend = nil
		switch {
		case p.hasPrev && p.prev == sum:
			return c.bad(seq, "message changed: its chain value is not the signed one")
		case p.computed == sum:
			return c.bad(c.seq, "%s header altered or removed", PrevHeader)
		}
		return c.bad(c.seq, "does not follow seq %d, and the chain differs from the signed checkpoint", seq)
	}
	if c.prevSum != sum {
		return c.bad(seq, "chain value differs from the signed checkpoint: this message was changed "+
			"(or, if the %s headers were rewritten, one in %d..%d)", PrevHeader, c.signedThrough+1, seq)
	}
	c.signedThrough = seq
	return nil
}

// maxClaim returns the highest signed sequence not yet reached.
func (c *linkChecker) maxClaim() uint64 {
	var m uint64
	for seq := range c.signed {
		m = max(m, seq)
	}
	return m
}
