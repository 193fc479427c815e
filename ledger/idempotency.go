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
	"slices"
	"time"

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
//	base64url(first 12 bytes of SHA-256("kmsledger/msg-id/v2" ‖
//	    u32BE(len(aggregate)) ‖ aggregate ‖ u32BE(len(commandID)) ‖ commandID))
//
// without padding: 16 characters, within JetStream's message id limits
// whatever the inputs. A command id is thus scoped to the aggregate it
// writes: the same client id used for another key, enclave, identity or
// policy is another command, while a retry on the same aggregate is a
// duplicate. Two commands share an id by chance with a probability of
// about n²/2^97 among n ids that meet: those of the server's duplicates
// window (under 10^-17 for 2 minutes at 10,000 commands a second) and an
// aggregate's own events, which Lookup reads. The server stores the id with every event and
// remembers it for the duplicates window, so it is kept short. Append
// uses it; any other writer of LEDGER events (batches) must too.
func ScopedMsgID(aggregate, commandID string) string {
	id, _ := scopedMsgIDs(aggregate, commandID)
	return id
}

// v2ScopedMsgID is the Nats-Msg-Id written before 2026-12-07: the first
// 16 bytes of the same hash, 22 characters (of which ScopedMsgID is the
// first 16). Lookup still recognises it.
func v2ScopedMsgID(aggregate, commandID string) string {
	_, v2 := scopedMsgIDs(aggregate, commandID)
	return v2
}

// scopedMsgIDs returns ScopedMsgID and v2ScopedMsgID from one hash.
func scopedMsgIDs(aggregate, commandID string) (id, v2 string) {
	sum := scopedSum(msgIDLabel, aggregate, commandID)
	return base64.RawURLEncoding.EncodeToString(sum[:12]), base64.RawURLEncoding.EncodeToString(sum[:16])
}

// legacyScopedMsgID is the Nats-Msg-Id written before v2ScopedMsgID:
// hex(SHA-256) with the label "kmsledger/msg-id/v1", 64 characters.
// Lookup still recognises it, so that a command retried across an
// upgrade is still a replay.
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

// Replays of a command id (Lookup).
const (
	// replayWindow is how long after its event a command id is still
	// recognised on its aggregate: the promise made to clients (README,
	// "Idempotent requests"). It is not the server's duplicates window
	// (duplicateWindow), which only has to outlast a resend.
	replayWindow = 24 * time.Hour
	// lookupScanMax bounds the events on one aggregate that Lookup reads
	// past the duplicates window. An aggregate with more events in the
	// replay window makes Lookup fail rather than read on.
	lookupScanMax = 1_000
)

// ErrLookupTooLong is Lookup's answer when an aggregate has more than
// lookupScanMax events within the replay window: it cannot tell whether
// the command id was applied, so the command is refused rather than
// risked twice.
var ErrLookupTooLong = errors.New("ledger: lookup: too many events on the aggregate within 24 h to look the command id up")

// Lookup reports whether an event with commandID on aggregate was appended
// within the last 24 hours (replayWindow), and returns it (with Seq set).
// It never writes. ok = false with a nil error means no such event; an
// error means Lookup could not tell.
//
// It asks the server's duplicates window first (a probe: one request,
// which also sees an append the server is still storing), then reads
// the aggregate's own events stored within the replay window (a subject
// holds one key, identity, policy or enclave, so a few events; a subject
// without any costs one request) for the event's message id, or the
// longer message ids of earlier versions (v2ScopedMsgID,
// legacyScopedMsgID), so that a command retried across an upgrade is
// still a replay.
func (s *Store) Lookup(ctx context.Context, aggregate, commandID string) (ev Event, ok bool, err error) {
	if s.isClosed() {
		return Event{}, false, ErrClosed
	}
	if !validSubject(aggregate, ledgerPrefix, false) || !validToken(commandID) {
		return Event{}, false, fmt.Errorf("ledger: lookup %q %q: %w", aggregate, commandID, ErrInvalid)
	}
	id, v2 := scopedMsgIDs(aggregate, commandID)
	ids := []string{id, v2, legacyScopedMsgID(aggregate, commandID)}
	seq, ok, err := s.probe(ctx, aggregate, ids[0], nil)
	if err != nil {
		return Event{}, false, err
	}
	var m *jetstream.RawStreamMsg
	if ok {
		if m, err = s.ledger.GetMsg(ctx, seq); err != nil {
			return Event{}, false, fmt.Errorf("ledger: lookup %s seq %d: %w", aggregate, seq, s.mapErr(err))
		}
	} else if m, err = s.scanFor(ctx, aggregate, ids); err != nil || m == nil {
		return Event{}, false, err
	}
	ev, err = decodeMessage(m.Header, m.Data, m.Subject, m.Sequence)
	if err != nil {
		return Event{}, false, err
	}
	return ev, true, nil
}

// scanFor reads the events on subject stored within the replay window,
// oldest first, and returns the first whose message id is one of ids
// (nil if none). It reads at most s.scanMax events.
func (s *Store) scanFor(ctx context.Context, subject string, ids []string) (*jetstream.RawStreamMsg, error) {
	since := time.Now().Add(-s.replayWindow)
	req := map[string]any{"start_time": since, "next_by_subj": subject}
	for range s.scanMax {
		m, err := s.ledgerGet(ctx, req)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("ledger: lookup %s: %w", subject, s.mapErr(err))
		}
		if id := m.Header.Get(nats.MsgIdHdr); id != "" && slices.Contains(ids, id) {
			return m, nil
		}
		req = map[string]any{"seq": m.Sequence + 1, "next_by_subj": subject}
	}
	return nil, fmt.Errorf("%w (%s: more than %d)", ErrLookupTooLong, subject, s.scanMax)
}

// ledgerGet reads one LEDGER message through the MSG.GET API: from the
// stream's leader in a cluster (leaderStream), from the server itself
// otherwise.
func (s *Store) ledgerGet(ctx context.Context, req map[string]any) (*jetstream.RawStreamMsg, error) {
	if ls, ok := s.ledger.(*leaderStream); ok {
		return ls.get(ctx, req)
	}
	return msgGet(ctx, s.nc, ledgerStream, req)
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
