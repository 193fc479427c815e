package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxBatch is the most events one AppendBatch takes: JetStream's default
// limit of messages in an atomic batch.
const MaxBatch = 1000

// Headers of JetStream's atomic batch publish (ADR-50, nats-server ≥ 2.12;
// nats.go has no helper for them).
const (
	batchIDHeader     = "Nats-Batch-Id"
	batchSeqHeader    = "Nats-Batch-Sequence"
	batchCommitHeader = "Nats-Batch-Commit"
)

// ErrBatchDuplicate reports an AppendBatch one of whose command ids was
// already appended (within the deduplication window): nothing was written.
var ErrBatchDuplicate = errors.New("ledger: batch holds an already appended command id")

// AppendBatch appends evs as one atomic batch: either every event is
// stored, at consecutive sequences first..last in order, or none is.
// xs[i] is the expectation of evs[i], as for Append, checked against the
// stream before the batch; an expectation on a subject that an earlier
// event of the batch writes is refused (ErrInvalid): it could only be
// checked against the batch itself. A failed expectation writes nothing
// and returns a *ConflictError. Every event carries its own Nats-Msg-Id
// (its CommandID); a batch holding an id already appended writes nothing
// and returns ErrBatchDuplicate (retrying a whole batch is not
// idempotent: give each batch fresh ids).
//
// Every message is a link of the hash chain, with its Prev header, like
// an Append. When AppendBatch returns without error the events are on
// disk.
func (s *Store) AppendBatch(ctx context.Context, evs []Event, xs []Expect) (first, last uint64, err error) {
	if s.isClosed() {
		return 0, 0, ErrClosed
	}
	if s.chains.readOnly {
		return 0, 0, ErrReadOnly
	}
	if len(evs) == 0 || len(evs) != len(xs) || len(evs) > MaxBatch {
		return 0, 0, fmt.Errorf("ledger: batch of %d events with %d expectations (1 to %d): %w", len(evs), len(xs), MaxBatch, ErrInvalid)
	}
	msgs := make([]*nats.Msg, len(evs))
	written := make(map[string]bool, len(evs))
	for i, ev := range evs {
		body, err := encodeEvent(ev)
		if err != nil {
			return 0, 0, err
		}
		msg := newMsg(ev, s.storedEvent(body, ev.Aggregate))
		msg.Header.Set(jetstream.MsgIDHeader, ev.CommandID)
		msg.Header.Set(jetstream.ExpectedStreamHeader, ledgerStream)
		if x := xs[i]; !x.Any {
			subj := x.Subject
			if subj == "" {
				subj = ev.Aggregate
			}
			if !validSubject(subj, ledgerPrefix, true) || written[subj] {
				return 0, 0, fmt.Errorf("ledger: batch event %d: expectation subject %q: %w", i, subj, ErrInvalid)
			}
			msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(x.Seq, 10))
			msg.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, subj)
		}
		written[ev.Aggregate] = true
		msgs[i] = msg
	}
	if w := s.chains.ledger.w; w != nil && !w.writes(ledgerStream) {
		last, err = w.forwardBatch(ctx, ledgerStream, msgs) // cluster_writer.go
	} else {
		last, err = s.chains.ledger.publishBatch(ctx, s.nc, msgs)
	}
	if err != nil {
		var apiErr *jetstream.APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrCodeBatchDuplicate:
			return 0, 0, fmt.Errorf("%w: %s", ErrBatchDuplicate, apiErr.Description)
		case isWrongLastSeq(err):
			return 0, 0, s.batchConflict(ctx, evs, xs)
		}
		return 0, 0, fmt.Errorf("ledger: append batch: %w", s.mapErr(err))
	}
	if err := s.ledgerBlocks.sync(); err != nil {
		return 0, 0, fmt.Errorf("ledger: append batch: %w", err)
	}
	return last - uint64(len(msgs)) + 1, last, nil
}

// jsErrCodeBatchDuplicate is JetStream's "atomic publish batch contains
// duplicate message id" error code.
const jsErrCodeBatchDuplicate jetstream.ErrorCode = 10201

// publishBatch appends msgs as one atomic batch of consecutive links. It
// holds the chain's mutex throughout, so the sequences are head+1 …
// head+n and every Prev header is known before the first message is
// sent; the first message expects the stream's last sequence to be the
// head, and only the last message (the commit) stores anything. It
// returns the last sequence.
func (c *chainHead) publishBatch(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if c.needsLoad() {
			if err := c.load(ctx); err != nil {
				return 0, err
			}
		}
		seq, sum, err := c.sendBatch(ctx, nc, msgs)
		if err == nil {
			for i, m := range msgs {
				c.stored(seq-uint64(len(msgs)-1-i), m.Subject)
			}
			c.seq, c.sum = seq, sum
			c.appended()
			return seq, nil
		}
		var apiErr *jetstream.APIError
		switch {
		case isWrongLastSeq(err) && attempt == 0:
			info, ierr := c.stream.Info(ctx)
			if ierr != nil {
				c.markStale()
				return 0, err
			}
			if info.State.LastSeq != c.seq {
				c.log.Warn("ledger: stream moved under the chain head; reloading", "stream", c.name,
					"head", c.seq, "last", info.State.LastSeq)
				c.markStale()
				continue
			}
		case !errors.As(err, &apiErr):
			c.markStale() // outcome unknown
		}
		return 0, err
	}
}

// sendBatch sends one attempt of a batch and returns the last sequence
// and chain value it stored.
func (c *chainHead) sendBatch(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg) (uint64, Sum, error) {
	var idb [16]byte
	rand.Read(idb[:])
	id := hex.EncodeToString(idb[:])
	seq, sum := c.seq, c.sum
	for i, msg := range msgs {
		msg.Header.Set(PrevHeader, sum.String())
		msg.Header.Set(batchIDHeader, id)
		msg.Header.Set(batchSeqHeader, strconv.Itoa(i+1))
		msg.Header.Del(jetstream.ExpectedLastSeqHeader)
		msg.Header.Del(batchCommitHeader)
		if i == 0 {
			msg.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(c.seq, 10))
		}
		if i == len(msgs)-1 {
			msg.Header.Set(batchCommitHeader, "1")
		}
		seq++
		raw := RawMessage{Seq: seq, Subject: msg.Subject, Type: msg.Header.Get(TypeHeader),
			MsgID: msg.Header.Get(nats.MsgIdHdr), Body: msg.Data}
		prev := sum
		sum = chainNext(sum, raw.Leaf())

		resp, err := nc.RequestMsgWithContext(ctx, c.wire(msg, prev))
		if err != nil {
			return 0, Sum{}, err
		}
		var ack struct {
			Stream string              `json:"stream"`
			Seq    uint64              `json:"seq"`
			Count  int                 `json:"count"`
			Error  *jetstream.APIError `json:"error"`
		}
		if len(resp.Data) == 0 {
			if i < len(msgs)-1 {
				continue // staged
			}
			return 0, Sum{}, fmt.Errorf("ledger: %s: empty answer to a batch commit", c.name)
		}
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return 0, Sum{}, fmt.Errorf("ledger: %s: batch answer: %w", c.name, err)
		}
		if ack.Error != nil {
			return 0, Sum{}, ack.Error
		}
		if i < len(msgs)-1 {
			return 0, Sum{}, fmt.Errorf("ledger: %s: batch message %d answered %q", c.name, i+1, resp.Data)
		}
		if ack.Stream != c.name || ack.Seq != seq || (ack.Count != 0 && ack.Count != len(msgs)) {
			// Cannot happen with the expectation on the first message;
			// never chain past it.
			c.markStale()
			return 0, Sum{}, fmt.Errorf("ledger: %s: batch of %d stored at %d (count %d), chain head at %d", c.name, len(msgs), ack.Seq, ack.Count, c.seq)
		}
	}
	return seq, sum, nil
}

// batchConflict names the first expectation of a refused batch that does
// not hold (any, if the stream moved again since).
func (s *Store) batchConflict(ctx context.Context, evs []Event, xs []Expect) *ConflictError {
	for i, x := range xs {
		if x.Any {
			continue
		}
		subj := x.Subject
		if subj == "" {
			subj = evs[i].Aggregate
		}
		if seq, err := s.LastSeq(ctx, subj); err != nil || seq != x.Seq {
			return &ConflictError{Subject: subj, Expected: x.Seq}
		}
	}
	return &ConflictError{Subject: ledgerPrefix + ">", Expected: 0}
}
