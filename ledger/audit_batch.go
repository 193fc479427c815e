package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults of AuditConfig.
const (
	DefaultAuditInterval = time.Second
	DefaultAuditBatch    = 512
)

// auditMaxMessage bounds one AUDIT message; a flush larger than this is
// stored as several messages, split between records (the embedded
// server's limit is 1 MiB).
const auditMaxMessage = 512 << 10

// auditStoreTimeout bounds one attempt to store a batch.
const auditStoreTimeout = 10 * time.Second

// AuditConfig configures an Auditor.
type AuditConfig struct {
	// Interval is how often buffered records are stored (batched mode).
	// 0 means DefaultAuditInterval.
	Interval time.Duration
	// Batch is the largest number of records that may be accepted and
	// not yet stored, in both modes; a buffer half that full is stored at
	// once, and Record waits while Batch records are unstored. 0 means
	// DefaultAuditBatch.
	Batch int
	// Sync makes Record return only once its record is stored. Records
	// of concurrent requests share one message (group commit).
	Sync   bool
	Logger *slog.Logger // nil = discard
}

// Auditor buffers AuditRecords and stores them in AUDIT, one message per
// batch. It is safe for concurrent use.
//
// Loss bound: a record takes one of Batch slots before it enters the
// buffer and gives it back only after the message holding it is stored,
// so at any moment at most Batch records have been accepted (Record
// returned) without being stored. A crash (kill -9, power cut) loses at
// most those: at most Batch records, all accepted within the last
// Interval plus the time one store takes. In Sync mode no accepted record
// is lost.
type Auditor struct {
	s     *Store
	cfg   AuditConfig
	log   *slog.Logger
	slots chan struct{} // one per accepted, unstored record
	kick  chan struct{} // asks the flusher to store now
	stop  chan struct{} // closed by Close
	done  chan struct{} // closed when the flusher has returned

	mu       sync.Mutex
	closed   bool
	pending  []byte // JSON lines
	spare    []byte // the last stored buffer, reused for pending
	count    int    // records in pending
	cur      *auditBatch
	closeErr error
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
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Auditor{
		s: s, cfg: cfg, log: log,
		slots: make(chan struct{}, cfg.Batch), kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
		cur: &auditBatch{done: make(chan struct{})},
	}
	go a.run()
	return a
}

// Record accepts r. In batched mode it returns once r is buffered; in
// Sync mode once the message holding r is stored (or storing it failed).
// It waits while Batch records are unstored. After Close it returns
// ErrClosed.
func (a *Auditor) Record(ctx context.Context, r *AuditRecord) error {
	select {
	case a.slots <- struct{}{}:
	case <-a.stop:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("ledger: audit record: %w", ctx.Err())
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		<-a.slots
		return ErrClosed
	}
	a.pending = append(appendRecord(a.pending, r), '\n')
	a.count++
	b := a.cur
	// Store half a batch at once: the other half can fill while it is
	// stored, so requests rarely wait for room.
	full := 2*a.count >= cap(a.slots) || len(a.slots) == cap(a.slots)
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

// Sync reports whether Record waits until its record is stored.
func (a *Auditor) Sync() bool { return a.cfg.Sync }

// Close stores what is buffered and stops the Auditor; later Records fail
// with ErrClosed. It returns the error of the last failed store, if any.
// Close is idempotent.
func (a *Auditor) Close() error {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.stop)
	}
	a.mu.Unlock()
	<-a.done
	return a.closeErr
}

// run is the flusher: it stores the buffer on every tick (batched mode)
// and whenever Record asks, until Close.
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
			a.closeErr = a.flush(true)
			return
		}
		a.flush(false)
	}
}

// flush stores the buffered records and frees their slots. A failed store
// is retried (the records stay unstored and keep their slots, so Record
// applies back-pressure) until it succeeds, the Store is closed, or, when
// final, after one more attempt.
func (a *Auditor) flush(final bool) error {
	a.mu.Lock()
	body, n, b := a.pending, a.count, a.cur
	a.pending, a.count, a.cur = a.spare[:0], 0, &auditBatch{done: make(chan struct{})}
	a.spare = nil
	a.mu.Unlock()
	if n == 0 {
		close(b.done)
		return nil
	}
	err := a.store(body, final)
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

// store writes body as one or more AUDIT messages split between lines.
func (a *Auditor) store(body []byte, final bool) error {
	for len(body) > 0 {
		n := 0
		for n < len(body) {
			end := n
			for end < len(body) && body[end] != '\n' {
				end++
			}
			end++ // the '\n'
			if n > 0 && end > auditMaxMessage {
				break
			}
			n = end
		}
		if err := a.storeOne(body[:n], final); err != nil {
			return err
		}
		body = body[n:]
	}
	return nil
}

// storeOne stores one message under a fresh batch id, retrying with the
// same id so that a batch whose ack was lost is not stored twice.
func (a *Auditor) storeOne(msg []byte, final bool) error {
	var id [16]byte
	rand.Read(id[:])
	batchID := "audit-" + hex.EncodeToString(id[:])
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), auditStoreTimeout)
		_, err := a.s.appendAudit(ctx, batchID, msg)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrClosed) || errors.Is(err, ErrReadOnly) || (final && attempt >= 2) {
			a.log.Error("audit records lost", "err", err)
			return err
		}
		a.log.Error("storing audit records failed; retrying", "attempt", attempt, "err", err)
		select {
		case <-time.After(backoff):
		case <-a.stop:
			final = true
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
