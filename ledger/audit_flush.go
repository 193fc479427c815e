package ledger

// The Auditor's flusher: storing the buffered records in AUDIT, split
// into messages, retried, and refused records replaced by markers. The
// Auditor, its slots and its buffer are in audit_batch.go.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// auditStoreTimeout bounds one attempt to store a batch.
const auditStoreTimeout = 10 * time.Second

// run is the flusher: it stores the buffer on every tick (batched mode)
// and whenever Commit asks, until Close.
func (a *Auditor) run() {
	defer close(a.done)
	var tick <-chan time.Time
	if !a.cfg.Sync {
		t := time.NewTicker(a.cfg.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-a.kick:
		case <-tick:
		case <-a.stop:
			a.closeErr = a.flush()
			return
		}
		a.flush()
	}
}

// flush stores the buffered records and frees their slots. A failed store
// is retried (the records stay unstored and keep their slots, so Reserve
// applies back-pressure) until it succeeds, the stream refuses it for
// good (storeChunk), the Store is closed, or, once Close has begun, after
// one more attempt.
func (a *Auditor) flush() error {
	a.mu.Lock()
	body, n, b := a.pending, a.count, a.cur
	a.pending, a.count, a.cur = a.spare[:0], 0, &auditBatch{done: make(chan struct{})}
	a.spare = nil
	a.mu.Unlock()
	if n == 0 {
		close(b.done)
		return nil
	}
	err := a.store(body)
	b.err = err
	close(b.done)
	a.mu.Lock()
	a.spare = body // stored and acknowledged: the client holds no reference
	a.mu.Unlock()
	for range n {
		<-a.slots
	}
	return err
}

// store writes body as one or more AUDIT messages of at most
// auditMaxMessage bytes, split between lines.
func (a *Auditor) store(body []byte) error {
	for len(body) > 0 {
		n := 0
		for n < len(body) {
			end := n + bytes.IndexByte(body[n:], '\n') + 1
			if end == n { // no '\n': cannot happen, the buffer holds whole lines
				end = len(body)
			}
			if n > 0 && end > auditMaxMessage {
				break
			}
			n = end
		}
		if err := a.storeChunk(body[:n]); err != nil {
			a.lost.Add(lines(body[n:]))
			a.log.Error("audit records lost", "records", lines(body), "err", err)
			return err
		}
		body = body[n:]
	}
	return nil
}

// storeChunk stores msg (whole lines) as one message. If the stream
// refuses it for good (refusedByStream), it stores each half of msg
// instead, down to single records; a single refused record is dropped
// and a marker record stored in its place. Every record of msg is
// counted as stored, dropped or lost.
func (a *Auditor) storeChunk(msg []byte) error {
	err := a.storeOne(msg)
	switch {
	case err == nil:
		a.stored.Add(lines(msg))
		return nil
	case !refusedByStream(err):
		a.lost.Add(lines(msg))
		return err
	}
	if i := middleLine(msg); i > 0 {
		if err := a.storeChunk(msg[:i]); err != nil {
			a.lost.Add(lines(msg[i:]))
			return err
		}
		return a.storeChunk(msg[i:])
	}
	a.dropped.Add(1)
	a.log.Error("audit record refused by the stream; storing a marker record instead", "bytes", len(msg), "err", err)
	switch merr := a.storeOne(dropMarker(msg, err)); {
	case merr == nil:
		return nil
	case refusedByStream(merr):
		a.lost.Add(1)
		a.log.Error("audit marker record refused by the stream too; the record is lost", "err", merr)
		return nil
	default:
		a.lost.Add(1)
		return merr
	}
}

// storeOne stores one message under a fresh batch id, retrying with the
// same id so that a batch whose ack was lost is not stored twice. It
// gives up at once when the Store is closed or read-only or the stream
// refuses the message (refusedByStream), and after a second attempt once
// Close has begun.
func (a *Auditor) storeOne(msg []byte) error {
	var id [16]byte
	rand.Read(id[:])
	batchID := "audit-" + hex.EncodeToString(id[:])
	backoff := 50 * time.Millisecond
	final := false
	for attempt := 1; ; attempt++ {
		select {
		case <-a.stop:
			final = true
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), auditStoreTimeout)
		_, err := a.s.appendAudit(ctx, batchID, msg)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrClosed) || errors.Is(err, ErrReadOnly) || refusedByStream(err) || (final && attempt >= 2) {
			return err
		}
		a.log.Error("storing audit records failed; retrying", "attempt", attempt, "err", err)
		select {
		case <-time.After(backoff):
		case <-a.stop:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// refusedByStream reports whether err is the stream's (or the server's)
// refusal of a message as such, which no retry changes: too large for
// the stream's or the server's limits.
func refusedByStream(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamMessageExceedsMaximum, jsErrCodeStreamHeaderExceedsMaximum:
			return true
		}
	}
	return false
}

// jsErrCodeStreamHeaderExceedsMaximum is nats-server's
// JSStreamHeaderExceedsMaximumErr (errors.json), which nats.go does not
// name.
const jsErrCodeStreamHeaderExceedsMaximum jetstream.ErrorCode = 10097

// dropMarker is the marker record (one JSON line) that replaces line, a
// record the stream refused with err: the record's small fields, its
// items left out (and counted), and Dropped saying why.
func dropMarker(line []byte, err error) []byte {
	var r AuditRecord
	if json.Unmarshal(line, &r) != nil || r.Time.IsZero() {
		r = AuditRecord{Time: time.Now().UTC()}
	}
	if len(r.Items) > 0 {
		n := len(r.Items)
		for _, c := range r.Truncated {
			if c.Field == "items" {
				n = max(n, c.Len)
			}
		}
		r.Truncated = append(r.Truncated, AuditCut{Field: "items", Len: n})
		r.Items = nil
	}
	r.Dropped = &AuditDrop{Bytes: len(bytes.TrimSuffix(line, []byte{'\n'})), Reason: err.Error()}
	return append(appendRecord(nil, &r), '\n')
}

// middleLine returns the offset of the line boundary nearest the middle
// of msg (whole lines), or 0 if msg is one line.
func middleLine(msg []byte) int {
	half := len(msg) / 2
	if i := bytes.IndexByte(msg[half:], '\n'); i >= 0 && half+i+1 < len(msg) {
		return half + i + 1
	}
	if i := bytes.LastIndexByte(msg[:half], '\n'); i >= 0 {
		return i + 1
	}
	return 0
}

// lines counts the records (lines) of body.
func lines(body []byte) uint64 {
	return uint64(bytes.Count(body, []byte{'\n'}))
}
