package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// maxAttempts bounds the load–decide–append loop when another writer
// wins the race for an aggregate.
const maxAttempts = 5

// Handler executes commands: decide against the local projection, store
// sealed material, append the event with optimistic concurrency, erase
// destroyed material, and wait until the projection has applied the event.
type Handler struct {
	store *ledger.Store
	proj  *projections.Projection
	rek   *hsm.REK
	log   *slog.Logger
	Now   func() time.Time

	// appendEvent is store.Append (a test injects a lost answer).
	appendEvent func(context.Context, ledger.Event, ledger.Expect) (uint64, bool, error)

	mu       sync.Mutex
	locks    map[string]*sync.RWMutex
	keyLocks [keyStripes]sync.Mutex // see lock
}

// NewHandler returns a Handler writing to store and reading proj.
func NewHandler(store *ledger.Store, proj *projections.Projection, rek *hsm.REK, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !store.Clustered() {
		// A single node seals new key versions in the compact form, which
		// an earlier version cannot open: a cluster may run two versions
		// at once during an upgrade, so its nodes keep the keyset form.
		rek = rek.CompactVersions()
	}
	return &Handler{store: store, proj: proj, rek: rek, log: log, Now: time.Now, locks: map[string]*sync.RWMutex{},
		appendEvent: store.Append}
}

// scopeLock serialises the commands of one enclave on this node, so that
// invariants spanning aggregates (no event for a deleted enclave) hold;
// the stream's compare-and-set protects against other nodes. Commands
// that write one key only share it (see lock).
func (h *Handler) scopeLock(scope string) *sync.RWMutex {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.locks[scope]
	if m == nil {
		m = new(sync.RWMutex)
		h.locks[scope] = m
	}
	return m
}

// keyStripes is the number of key locks: keys share them by hash, so
// that their number stays fixed however many keys there are.
const keyStripes = 1024

// lock takes the locks cmd runs under and returns their release. A
// command that writes one key's aggregate only (create, import, delete,
// disable, … a key) reads its enclave and writes nothing else, so it
// takes its enclave's scope lock shared, and the key's stripe lock:
// commands on different keys of one enclave run at once, and their
// appends share fsyncs (the ledger's group commit), while two commands
// on one key still run one after the other. Every other command (and
// every batch) takes its scope exclusively, so it waits for the key
// commands in flight and none starts until it is done.
func (h *Handler) lock(cmd Command) func() {
	sc := h.scopeLock(cmd.scope())
	inner := cmd
	if c, ok := cmd.(Checked); ok {
		inner = c.Command
	}
	agg, _, ok := target(inner)
	if !ok || !strings.HasPrefix(agg, ledger.KeySubject(cmd.scope(), "")) {
		sc.Lock()
		return sc.Unlock
	}
	f := fnv.New32a()
	f.Write([]byte(agg))
	kl := &h.keyLocks[f.Sum32()%keyStripes]
	sc.RLock()
	kl.Lock()
	return func() { kl.Unlock(); sc.RUnlock() }
}

// Execute runs cmd for actor. commandID makes a retried request
// idempotent; "" picks a fresh one. It returns the event's sequence (the
// original event's for a replayed command id). See Run.
func (h *Handler) Execute(ctx context.Context, actor, commandID string, cmd Command) (uint64, error) {
	r, err := h.Run(ctx, actor, commandID, cmd)
	return r.Seq, err
}

// Run runs cmd for actor and says what it did.
//
// commandID is the client's idempotency key ("" picks a fresh one). It is
// scoped to the aggregate the command writes (ledger.ScopedMsgID): the
// same id for another key or enclave is another command. A command id
// already applied to the same aggregate within the last 24 hours
// (ledger.Store.Lookup) is a replay: nothing is decided or written, and Run
// returns the original event with Replayed set, or ErrCommandIDReused if
// that event is not what cmd would produce (another command type, or an
// import of other material).
//
// Sealed material stored for an attempt that did not append its event
// (conflict, duplicate, refused append) is erased before Run returns, so
// a failed or duplicate command leaves nothing behind.
func (h *Handler) Run(ctx context.Context, actor, commandID string, cmd Command) (Result, error) {
	replayable := commandID != ""
	if !replayable {
		commandID = NewID()
	}
	if !ledger.ValidCommandID(commandID) {
		return Result{}, refuse(ErrInvalidArgument, "command id must be 1 to 256 printable ASCII characters without spaces")
	}
	defer h.lock(cmd)()

	// A Checked command's check runs in Decide, under this lock; the
	// replay of a command id runs it too, so that a replay answers only a
	// caller who may still run the command.
	inner := cmd
	if c, ok := cmd.(Checked); ok {
		inner = c.Command
	}
	if err := validate(inner); err != nil {
		return Result{}, err // names are checked before they become subjects
	}
	if replayable {
		if r, ok, err := h.replayOf(ctx, cmd, inner, commandID); ok || err != nil {
			return r, err
		}
	}
	for attempt := 1; ; attempt++ {
		if err := h.proj.CatchUp(ctx); err != nil {
			return Result{}, err
		}
		eventID := NewID()
		if attempt == 1 && !replayable {
			eventID = commandID // a command id picked here names one event: a key frame stores it once
		}
		d, err := h.decide(cmd, Env{Now: h.Now(), Actor: actor, CommandID: commandID, EventID: eventID, Seal: h.seal})
		if err != nil && replayable {
			// Another node may have applied this very command since the
			// lookup above (its event is why Decide refuses): a replay.
			// A failed lookup leaves Decide's error to answer.
			if r, ok, rerr := h.replayOf(ctx, cmd, inner, commandID); ok {
				return r, rerr
			}
		}
		if err != nil {
			return Result{}, err
		}
		seq, dup, err := h.commit(ctx, d)
		if errors.Is(err, ledger.ErrConflict) && attempt < maxAttempts {
			h.log.Debug("command conflict, retrying", "type", d.Event.Type, "subject", d.Event.Aggregate, "attempt", attempt)
			continue
		}
		if err != nil {
			return Result{}, err
		}
		if dup {
			// Another attempt with this id won the race on this aggregate.
			ev, ok, err := h.store.Lookup(ctx, d.Event.Aggregate, commandID)
			if err != nil {
				return Result{}, err
			}
			if !ok || ev.Seq != seq {
				return Result{}, fmt.Errorf("commands: duplicate of %s at seq %d not found", d.Event.Aggregate, seq)
			}
			return h.replayed(ctx, inner, ev)
		}
		ev := d.Event
		ev.Seq = seq
		if err := h.proj.WaitFor(ctx, seq); err != nil {
			return Result{Seq: seq, Event: ev}, err
		}
		h.prime(d) // prime.go
		h.propagate(ctx, seq, ev.Type)
		return Result{Seq: seq, Event: ev}, nil
	}
}

// replayOf looks commandID up on the aggregate inner writes. If it was
// applied there (ok), it answers with the original event, once the
// caller is shown to still be allowed to run cmd (checkOnly). err alone
// is a failed lookup.
func (h *Handler) replayOf(ctx context.Context, cmd, inner Command, commandID string) (r Result, ok bool, err error) {
	agg, _, known := target(inner)
	if !known {
		return Result{}, false, nil
	}
	ev, dup, err := h.store.Lookup(ctx, agg, commandID)
	if err != nil || !dup {
		return Result{}, false, err
	}
	if err := h.checkOnly(ctx, cmd); err != nil {
		return Result{}, true, err
	}
	r, err = h.replayed(ctx, inner, ev)
	return r, true, err
}

// replayed answers a command whose id was already applied to its
// aggregate: with the original event if it is cmd's, after the projection
// has applied it.
func (h *Handler) replayed(ctx context.Context, cmd Command, ev ledger.Event) (Result, error) {
	if _, _, known := target(cmd); known && !sameCommand(cmd, ev) {
		return Result{}, ErrCommandIDReused
	}
	h.log.Debug("command id replayed", "type", ev.Type, "subject", ev.Aggregate, "seq", ev.Seq)
	return Result{Seq: ev.Seq, Event: ev, Replayed: true}, h.proj.WaitFor(ctx, ev.Seq)
}

// resolveTimeout bounds how long commit tries to learn whether an append
// whose answer was lost was stored.
const resolveTimeout = 5 * time.Second

// checkOnly runs the check of a Checked command on the caught-up state
// (the caller holds the command's scope lock); other commands pass.
func (h *Handler) checkOnly(ctx context.Context, cmd Command) error {
	c, ok := cmd.(Checked)
	if !ok || c.Check == nil {
		return nil
	}
	if err := h.proj.CatchUp(ctx); err != nil {
		return err
	}
	var err error
	h.proj.View(func(s *projections.State) { err = c.Check(s) })
	return err
}

// commit stores d's sealed material, appends its event and erases what
// the event destroys. dup reports that the command id was already applied
// on the aggregate: nothing was appended and seq is the original event's.
//
// Material stored here is named for this attempt (ledger.AttemptSecretRef),
// so it is erased whenever the event is not appended: after a refused put,
// a conflict, a duplicate or any append error known to have written
// nothing. When the append's outcome is unknown (its answer was lost),
// commit looks the event up. Found, the command took effect; another
// attempt's event with this command id means this one will never be
// stored (the stream refuses its message id), and its material is erased.
// Not found proves nothing: a publish whose answer was lost can still be
// stored after the lookup (a server stalled past the wait, a Raft entry
// applied late), and its event would name erased material. So the
// material stays for Reconcile, which erases it once it is older than its
// grace unless an event holds it.
func (h *Handler) commit(ctx context.Context, d Decision) (seq uint64, dup bool, err error) {
	var stored []string
	for ref, sealed := range d.Put {
		if err := h.store.PutSecret(ctx, ref, sealed); err != nil {
			h.eraseAttempt(ctx, stored)
			return 0, false, fmt.Errorf("commands: store sealed material: %w", err)
		}
		stored = append(stored, ref)
	}
	seq, dup, err = h.appendEvent(ctx, d.Event, d.Expect)
	switch {
	case err == nil && !dup:
		// stored
	case err == nil || errors.Is(err, ledger.ErrConflict) || errors.Is(err, ledger.ErrInvalid),
		errors.Is(err, ledger.ErrClosed), errors.Is(err, ledger.ErrReadOnly): // nothing written
		h.eraseAttempt(ctx, stored)
		return seq, dup, err
	default:
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resolveTimeout)
		ev, found, lerr := h.store.Lookup(rctx, d.Event.Aggregate, d.Event.CommandID)
		cancel()
		switch {
		case lerr != nil || !found:
			if len(stored) > 0 {
				h.log.Warn("append outcome unknown: sealed material kept for Reconcile", "subject", d.Event.Aggregate,
					"refs", stored, "err", err, "lookup", lerr)
			}
			return 0, false, err
		case ev.ID != d.Event.ID:
			h.eraseAttempt(ctx, stored)
			return ev.Seq, true, nil
		}
		seq = ev.Seq // this attempt's event was stored; only its answer was lost
	}
	for _, ref := range d.Erase {
		// The event is stored: destruction is decided. A failure here
		// leaves material that Reconcile erases at the next start.
		if err := h.store.EraseSecret(context.WithoutCancel(ctx), ref); err != nil {
			h.log.Error("erase destroyed material", "ref", ref, "err", err)
		}
	}
	return seq, false, nil
}

// eraseAttempt erases the material an attempt stored for an event that
// was not appended. Failures are logged; Reconcile erases the rest.
func (h *Handler) eraseAttempt(ctx context.Context, refs []string) {
	for _, ref := range refs {
		if err := h.store.EraseSecret(context.WithoutCancel(ctx), ref); err != nil {
			h.log.Error("erase unreferenced material", "ref", ref, "err", err)
		}
	}
}

func (h *Handler) seal(kt hsm.KeyType, raw, hmacKey, aad []byte) ([]byte, string, error) {
	switch {
	case raw == nil:
		return h.rek.GenerateVersion(kt, aad)
	case hmacKey != nil:
		return h.rek.ImportVersionKES(kt, raw, hmacKey, aad)
	}
	return h.rek.ImportVersion(kt, raw, aad)
}

// decide runs Decide on the projection's state. Run gives a command
// whose id it picked that id as its first attempt's event id (ledger,
// event_keyframe.go: keyFrameCmdIsID); a later attempt is another event,
// with its own id and so its own material reference.
func (h *Handler) decide(cmd Command, env Env) (d Decision, err error) {
	h.proj.View(func(s *projections.State) { d, err = Decide(s, cmd, env) })
	return d, err
}

// NewID returns a random 128-bit id in hex.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
