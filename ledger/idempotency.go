package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// msgIDLabel separates ScopedMsgID hashes from any other use of SHA-256;
// legacyMsgIDLabel is the label of the ids written before (see
// legacyScopedMsgID).
const (
	msgIDLabel       = "kmsledger/msg-id/v2"
	legacyMsgIDLabel = "kmsledger/msg-id/v1"
)

// ScopedMsgID returns the Nats-Msg-Id of an event with the client's
// commandID on the aggregate subject aggregate:
//
//	base64url(first 16 bytes of SHA-256("kmsledger/msg-id/v2" ‖
//	    u32BE(len(aggregate)) ‖ aggregate ‖ u32BE(len(commandID)) ‖ commandID))
//
// without padding: 22 characters, within JetStream's message id limits
// whatever the inputs. A command id is thus scoped to the aggregate it
// writes: the same client id used for another key, enclave, identity or
// policy is another command, while a retry on the same aggregate is a
// duplicate. 128 bits keep two commands apart for as long as the ledger
// lives; the server stores the id with every event (and once more in the
// next pipelined member's expectation) and remembers it for the
// duplicates window, so it is kept short. Append uses it; any other
// writer of LEDGER events (batches) must too.
func ScopedMsgID(aggregate, commandID string) string {
	sum := scopedSum(msgIDLabel, aggregate, commandID)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// legacyScopedMsgID is the Nats-Msg-Id written before ScopedMsgID took its
// shorter form: hex(SHA-256) with the label "kmsledger/msg-id/v1", 64
// characters. Lookup still recognises it, so that a command retried across
// an upgrade, within the duplicates window, is still a replay.
func legacyScopedMsgID(aggregate, commandID string) string {
	sum := scopedSum(legacyMsgIDLabel, aggregate, commandID)
	return hex.EncodeToString(sum[:])
}

func scopedSum(label, aggregate, commandID string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(label))
	for _, f := range []string{aggregate, commandID} {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(f))))
		h.Write([]byte(f))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// ValidCommandID reports whether s can be a command id: 1 to 256
// printable ASCII characters without spaces.
func ValidCommandID(s string) bool { return validToken(s) }

// Lookup reports whether an event with commandID on aggregate was appended
// within the duplicates window (24 h), and returns it (with Seq set). It
// never writes. ok = false with a nil error means no such event is in the
// window; an error means Lookup could not tell.
func (s *Store) Lookup(ctx context.Context, aggregate, commandID string) (ev Event, ok bool, err error) {
	if s.isClosed() {
		return Event{}, false, ErrClosed
	}
	if !validSubject(aggregate, ledgerPrefix, false) || !validToken(commandID) {
		return Event{}, false, fmt.Errorf("ledger: lookup %q %q: %w", aggregate, commandID, ErrInvalid)
	}
	seq, ok, err := s.probe(ctx, aggregate, ScopedMsgID(aggregate, commandID), nil)
	if err == nil && !ok {
		seq, ok, err = s.probe(ctx, aggregate, legacyScopedMsgID(aggregate, commandID), nil)
	}
	if err != nil || !ok {
		return Event{}, false, err
	}
	m, err := s.ledger.GetMsg(ctx, seq)
	if err != nil {
		return Event{}, false, fmt.Errorf("ledger: lookup %s seq %d: %w", aggregate, seq, s.mapErr(err))
	}
	ev, err = decodeEvent(m.Data, seq)
	if err != nil {
		return Event{}, false, err
	}
	return ev, true, nil
}

// probe publishes a message with Nats-Msg-Id msgID on subject and an
// expected last message id that can never match. The server answers a
// duplicate Nats-Msg-Id with the original sequence before it checks that
// expectation; any other message is refused, so the probe never writes.
// A refusal by the server means "not a duplicate"; any other error means
// the answer is unknown.
func (s *Store) probe(ctx context.Context, subject, msgID string, body []byte) (uint64, bool, error) {
	msg := nats.NewMsg(subject)
	msg.Data = body
	never := jetstream.WithExpectLastMsgID(dedupeProbeID)
	if s.clustered {
		// A replicated stream checks the last message id only when it
		// applies a message, on every replica, and a failed check there
		// resets the stream's Raft group (nats-server v2.15): the probe
		// would be proposed and cost an election. The expected last
		// stream sequence is checked by the leader before it proposes
		// (after the duplicates), and no stream ever has this one.
		never = jetstream.WithExpectLastSequence(math.MaxUint64)
	}
	ack, err := s.js.PublishMsg(ctx, msg,
		jetstream.WithMsgID(msgID),
		jetstream.WithExpectStream(ledgerStream),
		never)
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("ledger: duplicate probe %s: %w", subject, s.mapErr(err))
	case !ack.Duplicate:
		// Cannot happen: the expectation refuses every new message.
		return 0, false, fmt.Errorf("ledger: duplicate probe %s was stored at seq %d", subject, ack.Sequence)
	}
	return ack.Sequence, true, nil
}
