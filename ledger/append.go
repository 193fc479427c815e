package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Expect is the optimistic-concurrency expectation of an Append.
type Expect struct {
	// Subject is the subject, or wildcard filter such as
	// EnclaveWildcard(enclave), whose last sequence is checked.
	// "" means the event's own aggregate subject.
	Subject string
	// Seq is the expected last sequence on Subject; 0 = "no message yet".
	Seq uint64
	// Any disables the expectation: the event is appended whatever the
	// subject holds.
	Any bool
	// At, if not 0, is the stream sequence as of which Seq was Subject's
	// last sequence (a projection's position when it answered). A single
	// node then checks the expectation itself when it can prove that
	// nothing after At wrote the subject, and the server stores the event
	// without the header (chain_recent.go). A wrong At is a wrong
	// answer: only a caller that read Seq from a state at exactly At may
	// set it. Ignored for another subject than the event's own.
	At uint64
}

// JetStream API error codes of a failed last-sequence expectation: 10071
// on a single server, 10164 on a replicated stream (as nats.go kv.go
// checks).
const (
	codeWrongLastSeq        = jetstream.JSErrCodeStreamWrongLastSequence
	codeWrongLastSeqReplica = jetstream.JSErrCodeStreamWrongLastSequenceConstant
)

// Append publishes ev on its aggregate subject ev.Aggregate. The body is
// the JSON envelope, Nats-Msg-Id is ScopedMsgID(ev.Aggregate, ev.CommandID)
// and the Kmsledger-Type header is ev.Type.
//
// Unless x.Any, the last sequence on x.Subject (ev.Aggregate if empty;
// wildcards allowed) must equal x.Seq, otherwise nothing is written and the
// error is a *ConflictError (errors.Is(err, ErrConflict)).
//
// If the CommandID was already appended on ev.Aggregate within the
// server's duplicates window (2 minutes in a cluster, 30 seconds on a
// single node; Lookup looks further back),
// nothing is written and Append returns the original sequence with dup =
// true and a nil error, whatever the expectation.
//
// When Append returns without error the event is on disk (see doc.go).
// Invalid subjects, types or command ids give ErrInvalid.
func (s *Store) Append(ctx context.Context, ev Event, x Expect) (seq uint64, dup bool, err error) {
	if s.isClosed() {
		return 0, false, ErrClosed
	}
	body, err := encodeEvent(ev)
	if err != nil {
		return 0, false, err
	}
	msgID := ScopedMsgID(ev.Aggregate, ev.CommandID)
	msg := newMsg(ev, s.storedEvent(body, ev.Aggregate))
	// The server stores the headers with the message, so only those
	// needed are set: no expected-stream header (only LEDGER holds
	// "ledger.>"), and the expectation's subject only when it is not the
	// message's own (the server's default).
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	subj := x.Subject
	if subj == "" {
		subj = ev.Aggregate
	}
	if !x.Any {
		if !validSubject(subj, ledgerPrefix, true) {
			return 0, false, fmt.Errorf("ledger: expectation subject %q: %w", subj, ErrInvalid)
		}
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(x.Seq, 10))
		if subj != ev.Aggregate {
			msg.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, subj)
		} else if s.sole && x.At > 0 && x.Seq <= x.At {
			msg.Header.Set(expectAtHeader, strconv.FormatUint(x.At, 10)) // never sent (chain_recent.go)
		}
	}
	ack, err := s.publishLedger(ctx, msg) // hash chain: chain.go
	if err == nil {
		if !ack.Duplicate {
			if err := s.ledgerBlocks.sync(); err != nil {
				return 0, false, fmt.Errorf("ledger: append %s: %w", ev.Aggregate, err)
			}
		}
		return ack.Sequence, ack.Duplicate, nil
	}
	if !isWrongLastSeq(err) {
		return 0, false, fmt.Errorf("ledger: append %s: %w", ev.Aggregate, s.mapErr(err))
	}
	// JetStream checks expectations before duplicates, so a retried command
	// whose first attempt succeeded fails its (now stale) expectation.
	// Probe the duplicates window to tell the two apart (see probe).
	if seq, ok, _ := s.probe(ctx, ev.Aggregate, msgID, body); ok {
		return seq, true, nil
	}
	return 0, false, &ConflictError{Subject: subj, Expected: x.Seq}
}

// storedEvent is the body an event's JSON is stored as on subject: a
// frame on a single node (event_compress.go), else the JSON.
func (s *Store) storedEvent(body []byte, subject string) []byte {
	if s.compress {
		return deflateEvent(body, subject)
	}
	return body
}

// newMsg builds the NATS message of ev.
func newMsg(ev Event, body []byte) *nats.Msg {
	msg := nats.NewMsg(ev.Aggregate)
	msg.Data = body
	msg.Header.Set(TypeHeader, ev.Type)
	return msg
}

// isWrongLastSeq reports whether err is JetStream's "wrong last sequence"
// API error, by its stable error code.
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == codeWrongLastSeq || apiErr.ErrorCode == codeWrongLastSeqReplica
}

// mapErr turns a connection closed by Close into ErrClosed.
func (s *Store) mapErr(err error) error {
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining) || s.isClosed() {
		return errors.Join(ErrClosed, err)
	}
	return err
}

// LastSeq returns the sequence of the last LEDGER message on subject
// (wildcards allowed), or 0 if there is none.
func (s *Store) LastSeq(ctx context.Context, subject string) (uint64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	if !validSubject(subject, ledgerPrefix, true) {
		return 0, fmt.Errorf("ledger: last seq %q: %w", subject, ErrInvalid)
	}
	m, err := s.ledger.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("ledger: last seq %s: %w", subject, s.mapErr(err))
	}
	return m.Sequence, nil
}

// Head returns the last sequence of LEDGER, 0 if it is empty. On a
// single server every write goes through this Store, so the head of the
// hash chain it appends is the stream's: Head answers from it without a
// request to the server (unless an append's outcome is unknown).
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	if !s.clustered && s.chains.ledger != nil {
		if seq, ok := s.chains.ledger.knownHead(); ok {
			return seq, nil
		}
	}
	return s.streamHead(ctx)
}

// streamHead returns the last sequence of LEDGER as the server has it.
func (s *Store) streamHead(ctx context.Context) (uint64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	info, err := s.ledger.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("ledger: head: %w", s.mapErr(err))
	}
	return info.State.LastSeq, nil
}
