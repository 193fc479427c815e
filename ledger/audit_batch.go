package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of AuditConfig.
const (
	DefaultAuditInterval = time.Second
	DefaultAuditBatch    = 512
	// DefaultClusterAuditBatch is the default Batch of a cluster node:
	// while the AUDIT stream elects a new leader (5 to 10 s after its
	// leader dies) records wait in memory, and requests should not.
	DefaultClusterAuditBatch = 8192
	DefaultAuditWait         = 5 * time.Second
	// DefaultClusterAuditWait is the default Wait of a cluster node. A
	// busy node fills its backlog in a few seconds; a request that then
	// waits for a slot should outlast the rest of an election (measured
	// up to 7.2 s after kill -9 of the leader) and the store of the
	// backlog that follows it.
	DefaultClusterAuditWait = 10 * time.Second
)

// auditMaxMessage bounds one AUDIT message; a flush larger than this is
// stored as several messages, split between records. A record is at most
// MaxAuditRecord, so every message is at most this, far below the
// embedded server's limit (1 MiB).
const auditMaxMessage = 512 << 10

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
	Backlog int    // slots taken now: records reserved or accepted and not yet stored
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
	return AuditStats{Stored: a.stored.Load(), Dropped: a.dropped.Load(), Lost: a.lost.Load(), Busy: a.busy.Load(), Backlog: len(a.slots)}
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
