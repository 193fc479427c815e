package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of AuditConfig.
const (
	DefaultAuditInterval = time.Second
	DefaultAuditBatch    = 512
	DefaultAuditWait     = 5 * time.Second
)

// auditMaxMessage bounds one AUDIT message; a flush larger than this is
// stored as several messages, split between records. A record is at most
// MaxAuditRecord, so every message is at most this, far below the
// embedded server's limit (1 MiB).
const auditMaxMessage = 512 << 10

// auditStoreTimeout bounds one attempt to store a batch.
const auditStoreTimeout = 10 * time.Second

// auditCloseWait bounds how long Close waits for slots taken by Reserve
// to be committed or released (requests still being served).
const auditCloseWait = 30 * time.Second

// ErrAuditBusy is returned by Reserve when no slot became free within
// AuditConfig.Wait (or the caller's context ended first).
var ErrAuditBusy = errors.New("ledger: audit: no free record slot")

// AuditConfig configures an Auditor.
type AuditConfig struct {
	// Interval is how often buffered records are stored (batched mode).
	// 0 means DefaultAuditInterval.
	Interval time.Duration
	// Batch is the largest number of records that may be reserved or
	// accepted and not yet stored, in both modes; a buffer half that full
	// (or holding one message's worth of bytes) is stored at once, and
	// Reserve waits while Batch slots are taken. 0 means
	// DefaultAuditBatch.
	Batch int
	// Sync makes Commit (and Record) return only once its record is
	// stored. Records of concurrent requests share one message (group
	// commit).
	Sync bool
	// Wait bounds how long Reserve waits for a free slot. 0 means
	// DefaultAuditWait.
	Wait   time.Duration
	Logger *slog.Logger // nil = discard
}

// AuditStats counts what an Auditor did with the records it accepted.
type AuditStats struct {
	Stored  uint64 // records stored as written
	Dropped uint64 // records the stream refused, each stored as a marker record instead (AuditRecord.Dropped)
	Lost    uint64 // records not stored at all: the Store closed or became read-only, the last attempt at Close failed, or a marker was refused too
	Busy    uint64 // Reserve calls that got no slot (ErrAuditBusy)
}

// Auditor buffers AuditRecords and stores them in AUDIT, one message per
// batch. It is safe for concurrent use.
//
// A request takes a slot (Reserve) before it is served and commits its
// record into that slot (AuditSlot.Commit), which then never waits for
// room; the slot is given back once the message holding the record is
// stored. So a request that cannot get a slot is not served at all.
//
// Loss bound: at any moment at most Batch records have been accepted
// (Commit returned) without being stored. A crash (kill -9, power cut)
// loses at most those: at most Batch records, all accepted within the
// last Interval plus the time one store takes. In Sync mode no accepted
// record is lost. Close stores every accepted record.
//
// A record is at most MaxAuditRecord bytes (appendRecord cuts it), so
// the stream never refuses one for its size; if it refuses a message
// anyway (a smaller limit on the stream), the message is split between
// records and a single refused record is replaced by a small marker
// record, never retried forever (see storeChunk).
type Auditor struct {
	s       *Store
	cfg     AuditConfig
	log     *slog.Logger
	slots   chan struct{} // one per reserved or accepted, unstored record
	kick    chan struct{} // asks the flusher to store now
	closing chan struct{} // closed when Close begins: no more slots
	stop    chan struct{} // closed by Close once reserved slots are committed
	done    chan struct{} // closed when the flusher has returned

	stored, dropped, lost, busy atomic.Uint64

	mu        sync.Mutex
	isClosing bool          // Close has begun: Reserve fails
	closed    bool          // the final flush has begun: Commit fails
	reserved  int           // slots taken by Reserve, not yet committed or released
	drained   chan struct{} // closed when reserved drops to 0 while Close waits
	pending   []byte        // JSON lines
	spare     []byte        // the last stored buffer, reused for pending
	count     int           // records in pending
	cur       *auditBatch
	closeErr  error
}

// auditBatch is the completion of one flush, for Sync waiters.
type auditBatch struct {
	done chan struct{}
	err  error
}

// NewAuditor starts an Auditor storing into s. Close it before the Store.
func (s *Store) NewAuditor(cfg AuditConfig) *Auditor {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultAuditInterval
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultAuditBatch
	}
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultAuditWait
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Auditor{
		s: s, cfg: cfg, log: log,
		slots: make(chan struct{}, cfg.Batch), kick: make(chan struct{}, 1),
		closing: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
		cur: &auditBatch{done: make(chan struct{})},
	}
	go a.run()
	return a
}

// AuditSlot is room for one record, taken by Reserve. Commit or Release
// it exactly once; a second call does nothing (Commit reports an error).
// An AuditSlot is used by one goroutine.
type AuditSlot struct {
	a    *Auditor
	used bool
}

// errSlotUsed is the error of a second Commit of one slot.
var errSlotUsed = errors.New("ledger: audit slot already used")

// Reserve takes a slot for one record. It waits while Batch slots are
// taken, at most AuditConfig.Wait and until ctx ends, and then fails with
// ErrAuditBusy; once Close has begun it fails with ErrClosed.
func (a *Auditor) Reserve(ctx context.Context) (*AuditSlot, error) {
	select {
	case a.slots <- struct{}{}:
	default:
		t := time.NewTimer(a.cfg.Wait)
		defer t.Stop()
		select {
		case a.slots <- struct{}{}:
		case <-a.closing:
			return nil, ErrClosed
		case <-ctx.Done():
			a.busy.Add(1)
			return nil, fmt.Errorf("%w: %w", ErrAuditBusy, ctx.Err())
		case <-t.C:
			a.busy.Add(1)
			return nil, ErrAuditBusy
		}
	}
	a.mu.Lock()
	if a.isClosing {
		a.mu.Unlock()
		<-a.slots
		return nil, ErrClosed
	}
	a.reserved++
	a.mu.Unlock()
	return &AuditSlot{a: a}, nil
}

// Commit accepts r into the slot. It never waits for room. In batched
// mode it returns once r is buffered; in Sync mode once the message
// holding r is stored, storing failed, or ctx ended (pass a context that
// is not the client's: the record is stored whatever the client does).
// It fails with ErrClosed only when Close gave up waiting for this slot.
func (sl *AuditSlot) Commit(ctx context.Context, r *AuditRecord) error {
	if sl.used {
		return errSlotUsed
	}
	sl.used = true
	a := sl.a
	a.mu.Lock()
	a.unreserveLocked()
	if a.closed {
		a.mu.Unlock()
		<-a.slots
		a.lost.Add(1)
		a.log.Error("audit record lost: committed after Close gave up waiting for it")
		return ErrClosed
	}
	a.pending = append(appendRecord(a.pending, r), '\n')
	a.count++
	b := a.cur
	// Store half a batch at once: the other half can fill while it is
	// stored, so requests rarely wait for room.
	full := 2*a.count >= cap(a.slots) || len(a.slots) == cap(a.slots) || len(a.pending) >= auditMaxMessage
	a.mu.Unlock()
	if a.cfg.Sync || full {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
	if !a.cfg.Sync {
		return nil
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return fmt.Errorf("ledger: audit record: %w", ctx.Err())
	}
}

// Release gives the slot back unused (a request that ends without a
// record). It does nothing after Commit.
func (sl *AuditSlot) Release() {
	if sl.used {
		return
	}
	sl.used = true
	sl.a.mu.Lock()
	sl.a.unreserveLocked()
	sl.a.mu.Unlock()
	<-sl.a.slots
}

// unreserveLocked ends a reservation; a.mu is held.
func (a *Auditor) unreserveLocked() {
	a.reserved--
	if a.reserved == 0 && a.drained != nil {
		close(a.drained)
		a.drained = nil
	}
}

// Record reserves a slot and commits r into it: Reserve then Commit.
func (a *Auditor) Record(ctx context.Context, r *AuditRecord) error {
	sl, err := a.Reserve(ctx)
	if err != nil {
		return fmt.Errorf("ledger: audit record: %w", err)
	}
	return sl.Commit(ctx, r)
}

// Sync reports whether Commit waits until its record is stored.
func (a *Auditor) Sync() bool { return a.cfg.Sync }

// Stats returns the Auditor's counters so far.
func (a *Auditor) Stats() AuditStats {
	return AuditStats{Stored: a.stored.Load(), Dropped: a.dropped.Load(), Lost: a.lost.Load(), Busy: a.busy.Load()}
}

// Close stops the Auditor: Reserve fails with ErrClosed from now on,
// Close waits (at most auditCloseWait) for the slots already taken to be
// committed or released, stores every accepted record, and returns the
// error of the last failed store, if any. Close is idempotent.
func (a *Auditor) Close() error {
	a.mu.Lock()
	if !a.isClosing {
		a.isClosing = true
		close(a.closing)
		if a.reserved > 0 {
			a.drained = make(chan struct{})
			d := a.drained
			a.mu.Unlock()
			t := time.NewTimer(auditCloseWait)
			select {
			case <-d:
			case <-t.C:
				a.log.Error("audit: requests still being served at close; their records will be lost")
			}
			t.Stop()
			a.mu.Lock()
		}
		a.closed = true
		close(a.stop)
	}
	a.mu.Unlock()
	<-a.done
	return a.closeErr
}

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
