package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
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

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// NewHandler returns a Handler writing to store and reading proj.
func NewHandler(store *ledger.Store, proj *projections.Projection, rek *hsm.REK, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{store: store, proj: proj, rek: rek, log: log, Now: time.Now, locks: map[string]*sync.Mutex{}}
}

// scopeLock serialises the commands of one enclave on this node, so that
// invariants spanning aggregates (no event for a deleted enclave) hold;
// the stream's compare-and-set protects against other nodes.
func (h *Handler) scopeLock(scope string) *sync.Mutex {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.locks[scope]
	if m == nil {
		m = new(sync.Mutex)
		h.locks[scope] = m
	}
	return m
}

// Execute runs cmd for actor. commandID makes a retried request
// idempotent; "" picks a fresh one. It returns the event's sequence.
func (h *Handler) Execute(ctx context.Context, actor, commandID string, cmd Command) (uint64, error) {
	if commandID == "" {
		commandID = NewID()
	}
	l := h.scopeLock(cmd.scope())
	l.Lock()
	defer l.Unlock()

	for attempt := 1; ; attempt++ {
		if err := h.proj.CatchUp(ctx); err != nil {
			return 0, err
		}
		var (
			d   Decision
			err error
		)
		h.proj.View(func(s *projections.State) {
			d, err = Decide(s, cmd, Env{Now: h.Now(), Actor: actor, CommandID: commandID, EventID: NewID(), Seal: h.seal})
		})
		if err != nil {
			return 0, err
		}
		seq, err := h.commit(ctx, d)
		if errors.Is(err, ledger.ErrConflict) && attempt < maxAttempts {
			h.log.Debug("command conflict, retrying", "type", d.Event.Type, "subject", d.Event.Aggregate, "attempt", attempt)
			continue
		}
		if err != nil {
			return 0, err
		}
		return seq, h.proj.WaitFor(ctx, seq)
	}
}

func (h *Handler) commit(ctx context.Context, d Decision) (uint64, error) {
	for ref, sealed := range d.Put {
		if err := h.store.PutSecret(ctx, ref, sealed); err != nil {
			return 0, fmt.Errorf("commands: store sealed material: %w", err)
		}
	}
	seq, _, err := h.store.Append(ctx, d.Event, d.Expect)
	if err != nil {
		for ref := range d.Put {
			if eerr := h.store.EraseSecret(context.WithoutCancel(ctx), ref); eerr != nil {
				h.log.Error("erase unreferenced material", "ref", ref, "err", eerr)
			}
		}
		return 0, err
	}
	for _, ref := range d.Erase {
		// The event is stored: destruction is decided. A failure here
		// leaves material that Reconcile erases at the next start.
		if err := h.store.EraseSecret(context.WithoutCancel(ctx), ref); err != nil {
			h.log.Error("erase destroyed material", "ref", ref, "err", err)
		}
	}
	return seq, nil
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

// Reconcile erases sealed material that no live key version references:
// material of a version whose deletion was recorded but whose erasure was
// interrupted, or material stored for a command that was never appended.
// Call it at start, before serving.
func (h *Handler) Reconcile(ctx context.Context) (erased int, err error) {
	if err := h.proj.CatchUp(ctx); err != nil {
		return 0, err
	}
	refs, err := h.store.ListSecrets(ctx, ">")
	if err != nil {
		return 0, err
	}
	live := map[string]bool{}
	h.proj.View(func(s *projections.State) {
		for _, e := range s.Enclaves {
			for _, k := range e.Keys {
				for _, v := range k.Versions {
					live[v.SecretRef] = true
				}
			}
		}
	})
	for _, ref := range refs {
		if live[ref] {
			continue
		}
		if err := h.store.EraseSecret(ctx, ref); err != nil {
			return erased, err
		}
		erased++
	}
	return erased, nil
}

// NewID returns a random 128-bit id in hex.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
