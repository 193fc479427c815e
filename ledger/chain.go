// Hash chain over the LEDGER and AUDIT streams.
//
// Summary: every message of LEDGER and of AUDIT is a link of its stream's
// hash chain, in stream order. The Store serialises the appends to one
// stream (chainHead.mu), so that it knows chain_{n-1} when it publishes
// message n; it sends it, in hex, in the Kmsledger-Prev header, and
// publishes with an expected last stream sequence of n-1, so a message
// is only stored where its Prev header says. Signed checkpoints
// (checkpoint.go) bind the chain values to a key sealed under the HSM.
//
//	chain_0    = 32 zero bytes
//	chain_n    = SHA-256(chain_{n-1} ‖ leaf_n)
//	leaf_n     = SHA-256(uint64be(seq) ‖ subject ‖ 0x00 ‖ type ‖ 0x00 ‖ msgid ‖ 0x00 ‖ body_digest)
//	body_digest = SHA-256(SHA-256(line_1) ‖ … ‖ SHA-256(line_k))
//
// type is the Kmsledger-Type header, msgid the Nats-Msg-Id header (""
// when absent). The lines of a body are its bytes split after every
// '\n' (a last line without '\n' counts; an empty body has no lines), so
// that the concatenated lines are the body. A LEDGER body (a JSON
// envelope) is one line; an AUDIT body is one JSON record per line.
//
// The leaf indirection lets an export leave an event out and give only its
// leaf, and an AUDIT batch disclose some of its records and only the
// digests of the others, while the chain still links everything to the
// signed checkpoints (see chain_export.go).
//
// The Prev header is a hint, not an input of the hash: it lets a verifier
// name the first bad sequence. The verifier checks it on every message
// (except those written before the chain existed, which have none).
//
// References: FIPS 180-4 (SHA-256); the construction is a plain hash chain
// (a linear Merkle–Damgård of message digests), as in RFC 6962 §2.1's leaf
// hashes but without a tree.

package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PrevHeader carries chain_{n-1}, 64 lower-case hex digits, on every
// LEDGER and AUDIT message appended by a cluster node; a single node
// stores chain_{n-1} in the message's link frame instead
// (event_linkframe.go), which reads back as the same Prev.
const PrevHeader = "Kmsledger-Prev"

// Sum is a SHA-256 value of the hash chain.
type Sum [sha256.Size]byte

// String returns s in lower-case hex.
func (s Sum) String() string { return hex.EncodeToString(s[:]) }

// parseSum decodes 64 hex digits. Upper-case digits are refused, so that
// a Sum has exactly one text form.
func parseSum(h string) (Sum, bool) {
	var s Sum
	if !DecodeLowerHex(s[:], h) {
		return Sum{}, false
	}
	return s, true
}

// bodyDigest is SHA-256 over the SHA-256 of every line of body.
func bodyDigest(body []byte) Sum {
	outer := sha256.New()
	eachLine(body, func(line []byte) error {
		d := sha256.Sum256(line)
		outer.Write(d[:])
		return nil
	})
	var s Sum
	outer.Sum(s[:0])
	return s
}

// leafHash is leaf_n of a message.
func leafHash(seq uint64, subject, typ, msgID string, digest Sum) Sum {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	h.Write(b[:])
	for _, s := range []string{subject, typ, msgID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(digest[:])
	var s Sum
	h.Sum(s[:0])
	return s
}

// chainNext is chain_n from chain_{n-1} and leaf_n.
func chainNext(prev, leaf Sum) Sum {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(leaf[:])
	var s Sum
	h.Sum(s[:0])
	return s
}

// RawMessage is one stored LEDGER or AUDIT message with what the chain
// covers.
type RawMessage struct {
	Stream  string
	Seq     uint64
	Subject string
	Type    string // Kmsledger-Type header
	MsgID   string // Nats-Msg-Id header
	Prev    string // Kmsledger-Prev header; "" if absent
	Body    []byte
}

// Leaf returns leaf_n of m, over its lines as Plain returns them (over
// no lines if they do not decompress: undecodableDigest).
func (m *RawMessage) Leaf() Sum { return m.leafOver(m.Plain()) }

// leafOver is Leaf from what Plain returned, for a caller that needs the
// lines too.
func (m *RawMessage) leafOver(body []byte, err error) Sum {
	return leafHash(m.Seq, m.Subject, m.Type, m.MsgID, m.sumOver(body, err))
}

// rawFrom converts a stored message.
func rawFrom(stream string, m *jetstream.RawStreamMsg) RawMessage {
	return rawMessage(stream, m.Sequence, m.Subject, m.Header, m.Data)
}

// chainHead is the running chain of one stream. Its mutex serialises the
// appends to the stream: compute, publish and ack happen under it.
type chainHead struct {
	name   string
	stream jetstream.Stream
	log    *slog.Logger

	notify chan<- struct{} // told (without blocking) after every append; may be nil

	clustered bool // other nodes append too: the head moves, and outcomes may be unknown
	linked    bool // links are published in link frames (wire)
	sole      bool // this process is the streams' only writer (Store.sole)

	ackTimeout time.Duration // a pipelined member's answer is waited for (ackWait; 0: groupWait)
	resend     time.Duration // resendHorizon (0: the default)
	w          *writer       // in an embedded cluster, one node appends to the stream (cluster_writer.go)
	q          *groupQueue   // group commit of the appends (chain_group.go)

	mu    sync.Mutex
	seq   uint64 // last sequence of the stream
	sum   Sum    // chain_seq
	stale bool   // a publish may or may not have been stored: reload first

	// answered: a message sent since the head was loaded was stored as
	// expected, so none sent before can still be stored (chain_recent.go).
	answered bool
	recent   *recentWrites // LEDGER on a single node: what the head stored lately (chain_recent.go)

	// reload asks, without mu, for a reload before the next publish: a
	// node that starts writing the stream must not wait for mu, which a
	// publish or a checkpoint may hold across network calls for seconds.
	reload atomic.Bool

	// known is seq while the head is not stale, read without mu (Head).
	known      atomic.Uint64
	knownValid atomic.Bool
}

// markStale says that the stream may hold more than the head knows.
func (c *chainHead) markStale() {
	c.stale, c.answered = true, false
	c.knownValid.Store(false)
}

// requestReload marks the head stale without taking mu: the holder of
// mu, or the next one, reloads before it publishes (needsLoad).
func (c *chainHead) requestReload() {
	c.reload.Store(true)
	c.knownValid.Store(false)
}

// needsLoad reports, with c.mu held, whether the head must be reloaded
// before the next publish.
func (c *chainHead) needsLoad() bool {
	if c.reload.Swap(false) {
		c.markStale()
	}
	return c.stale
}

// setKnown publishes c.seq as the stream's head, with c.mu held.
func (c *chainHead) setKnown() {
	c.known.Store(c.seq)
	c.knownValid.Store(!c.stale)
}

// knownHead returns the last sequence of the stream, as this Store
// appended it, without waiting for an append in progress; ok is false
// while the head may be behind the stream.
func (c *chainHead) knownHead() (seq uint64, ok bool) {
	if !c.knownValid.Load() || c.reload.Load() {
		return 0, false
	}
	seq = c.known.Load()
	return seq, c.knownValid.Load()
}

// load sets the head from the stream: the last message's Prev header and
// leaf give its chain value. A stream whose last message has no valid
// Prev header (written before the chain existed) is hashed from the
// start.
func (c *chainHead) load(ctx context.Context) error {
	info, err := c.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("ledger: %s chain head: %w", c.name, err)
	}
	last := info.State.LastSeq
	if last == 0 {
		c.seq, c.sum, c.stale = 0, Sum{}, false
		c.loaded()
		c.setKnown()
		return nil
	}
	m, err := c.stream.GetMsg(ctx, last)
	if err != nil {
		return fmt.Errorf("ledger: %s chain head at %d: %w", c.name, last, err)
	}
	raw := rawFrom(c.name, m)
	if prev, ok := parseSum(raw.Prev); ok {
		c.seq, c.sum, c.stale = last, chainNext(prev, raw.Leaf()), false
		c.loaded()
		c.setKnown()
		return nil
	}
	c.log.Info("ledger: hashing a stream written before the hash chain", "stream", c.name, "messages", last)
	sum := Sum{}
	err = scanStream(ctx, c.stream, c.name, 1, last, func(m RawMessage) error {
		sum = chainNext(sum, m.Leaf())
		return nil
	})
	if err != nil {
		return err
	}
	c.seq, c.sum, c.stale = last, sum, false
	c.loaded()
	c.setKnown()
	return nil
}

// head returns the last sequence and its chain value.
func (c *chainHead) head() (uint64, Sum) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq, c.sum
}

// publish appends msg as the next link: it sets the Prev header and
// expects the stream's last sequence to be the head's.
func (c *chainHead) publish(ctx context.Context, js jetstream.JetStream, msg *nats.Msg) (*jetstream.PubAck, error) {
	if c.w != nil && !c.w.writes(c.name) {
		return c.w.forward(ctx, c.name, msg) // cluster_writer.go
	}
	if c.q == nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.publishLocked(ctx, js, msg, true)
	}
	return c.q.submit(ctx, msg) // group commit: chain_group.go
}

// Bounds of the retries of a clustered append.
const (
	publishAttempt = 3 * time.Second // one publish; an R3 commit takes about a millisecond
	maxMoved       = 64              // reloads of a head that other nodes keep moving
)

// publishLocked is publish with c.mu held.
//
// A "wrong last sequence" error is either the caller's own expectation
// or the head's; if the stream moved (something else wrote to it, or an
// earlier publish whose outcome was unknown was stored) the head is
// reloaded and, if retry, the publish tried again: once on a single
// server, up to maxMoved times in a cluster, where every node appends.
// An error that is not a JetStream API error leaves the outcome unknown,
// so the head is reloaded before the next publish; in a cluster such a
// publish (a timeout, no leader during an election) is retried with the
// same message id until ctx ends, and the answer is then ErrUnavailable.
// In a cluster no message is sent again later than resendHorizon after
// its first send (ErrUnavailable then). A retry of a message that was
// stored gets the duplicate's ack.
func (c *chainHead) publishLocked(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, retry bool) (*jetstream.PubAck, error) {
	moved := 0
	backoff, jitter := 50*time.Millisecond, time.Millisecond
	first, last := time.Now(), error(nil)
	for {
		if last != nil && c.clustered && !resendable(first, c.resend) {
			return nil, fmt.Errorf("%w: %s: not stored within the resend horizon: %w", ErrUnavailable, c.name, last)
		}
		ack, err := c.publishOnce(ctx, js, msg)
		if err == nil {
			return ack, nil
		}
		last = err
		var apiErr *jetstream.APIError
		switch {
		case isWrongLastSeq(err):
			info, ierr := c.stream.Info(ctx)
			if ierr != nil {
				c.markStale()
				if c.clustered && isUnknownOutcome(ierr) && c.wait(ctx, &backoff) {
					continue
				}
				return nil, err
			}
			if info.State.LastSeq != c.seq {
				c.log.Debug("ledger: stream moved under the chain head; reloading", "stream", c.name,
					"head", c.seq, "last", info.State.LastSeq)
				c.markStale()
				moved++
				if retry && (moved == 1 || (c.clustered && moved < maxMoved)) {
					continue
				}
			} else if c.clustered && retry && moved < maxMoved && !c.subjectMoved(ctx, msg) {
				// A replicated stream's leader counts the entries it has
				// proposed but not yet stored (another writer's): the
				// head is right, the stream is busy. Try again shortly.
				moved++
				c.markStale()
				if c.wait(ctx, &jitter) {
					continue
				}
			}
		case c.clustered && isUnknownOutcome(err):
			c.log.Debug("ledger: publish outcome unknown; retrying", "stream", c.name, "err", err)
			c.markStale()
			if c.wait(ctx, &backoff) {
				continue
			}
			return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, c.name, err)
		case !errors.As(err, &apiErr):
			c.markStale()
		}
		return nil, err
	}
}

// wait sleeps before the next attempt of a clustered publish; it reports
// false when ctx ends first.
func (c *chainHead) wait(ctx context.Context, backoff *time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(*backoff):
	}
	*backoff = min(2**backoff, time.Second)
	return true
}

// resendable reports whether a message first sent at first may still be
// sent again with its message id: for horizon (resendHorizon if 0) after
// the first send, so that the server's duplicates window still holds it.
func resendable(first time.Time, horizon time.Duration) bool {
	if horizon <= 0 {
		horizon = resendHorizon
	}
	return time.Since(first) < horizon
}

// publishOnce reloads a stale head and publishes msg as its next link.
func (c *chainHead) publishOnce(ctx context.Context, js jetstream.JetStream, msg *nats.Msg) (*jetstream.PubAck, error) {
	if c.needsLoad() {
		if !c.clustered {
			c.awaitPending(js)
		}
		if err := c.load(ctx); err != nil {
			return nil, err
		}
	}
	msg.Header.Set(PrevHeader, c.sum.String())
	msg.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(c.seq, 10))
	msg.Header.Del(jetstream.ExpectedLastMsgIDHeader) // set by a group it was in (chain_group.go)
	var ack *jetstream.PubAck
	var err error
	if c.clustered {
		pctx, cancel := context.WithTimeout(ctx, publishAttempt)
		ack, err = js.PublishMsg(pctx, c.wire(msg, c.sum))
		cancel()
	} else {
		ack, err = c.publishAwait(ctx, js, c.wire(msg, c.sum))
	}
	if err != nil {
		return nil, err
	}
	if ack.Duplicate {
		// Stored before: by an attempt whose ack was lost, in a cluster
		// maybe after other nodes' appends.
		if c.clustered {
			c.markStale()
		}
		return ack, nil
	}
	if ack.Sequence != c.seq+1 {
		// Cannot happen with the expectation above; never chain past it.
		c.markStale()
		return nil, fmt.Errorf("ledger: %s: stored at %d, chain head at %d", c.name, ack.Sequence, c.seq)
	}
	raw := RawMessage{Seq: ack.Sequence, Subject: msg.Subject, Type: msg.Header.Get(TypeHeader),
		MsgID: msg.Header.Get(nats.MsgIdHdr), Body: msg.Data}
	c.seq, c.sum = ack.Sequence, chainNext(c.sum, raw.Leaf())
	c.stored(ack.Sequence, msg.Subject)
	c.appended()
	return ack, nil
}

// loadWait is load, retried in a cluster until ctx ends while the stream
// has no leader.
func (c *chainHead) loadWait(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	for {
		err := c.load(ctx)
		// A stream just created in a cluster is "not found" until its
		// group has formed.
		var apiErr *jetstream.APIError
		notYet := errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamNotFound
		if err == nil || !c.clustered || !(isUnknownOutcome(err) || notYet) {
			return err
		}
		c.log.Debug("ledger: chain head not readable yet; trying again", "stream", c.name, "err", err)
		if !c.wait(ctx, &backoff) {
			return err
		}
	}
}

// scanStream calls fn for every message of stream with a sequence in
// [from, to], in order. A message that cannot be read (missing, or
// refused by the store) stops the scan with an error naming its
// sequence. It reads message by message with direct gets, so that a
// missing sequence is reported, never skipped.
func scanStream(ctx context.Context, stream jetstream.Stream, name string, from, to uint64, fn func(RawMessage) error) error {
	for seq := max(from, 1); seq <= to; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			return &ReadError{Stream: name, Seq: seq, Err: err}
		}
		if m.Sequence != seq {
			return &ReadError{Stream: name, Seq: seq, Err: fmt.Errorf("store answered with seq %d", m.Sequence)}
		}
		if err := fn(rawFrom(name, m)); err != nil {
			return err
		}
	}
	return nil
}

// ReadError reports a LEDGER or AUDIT message that could not be read.
type ReadError struct {
	Stream string
	Seq    uint64
	Err    error
}

// Error implements error.
func (e *ReadError) Error() string {
	return fmt.Sprintf("ledger: read %s seq %d: %v", e.Stream, e.Seq, e.Err)
}

// Unwrap returns the cause.
func (e *ReadError) Unwrap() error { return e.Err }
