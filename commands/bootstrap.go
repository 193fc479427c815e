package commands

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// Errors of the root-of-trust commands.
var (
	// ErrNoHSM: none of the configured HSMs opens the ledger's REK.
	ErrNoHSM = errors.New("commands: no configured HSM can unseal the root encryption key")
	// ErrLastHSM: removing the only HSM the REK is sealed under.
	ErrLastHSM = newClientError("refusing to remove the last HSM the root encryption key is sealed under")
	// ErrHSMExists / ErrHSMNotFound: add-hsm of a sealed HSM, rm-hsm of an unknown one.
	ErrHSMExists   = newClientError("the root encryption key is already sealed under this HSM")
	ErrHSMNotFound = newClientError("the root encryption key is not sealed under an HSM of that name")
	// ErrHSMAmbiguous: rm-hsm of a name that several sealings have (an
	// HSM key replaced under the same name); the key id picks one.
	ErrHSMAmbiguous = newClientError("several sealings of the root encryption key have that name: give the key id")
)

// rootKeyAAD binds the sealed root API key in system.initialized.v1.
const rootKeyAAD = "kmsledger/root-api-key/v1"

// NamedHSM is an opened HSM with the name and kind it has in the server
// configuration.
type NamedHSM struct {
	Name, Kind string
	W          hsm.Wrapper
}

// InitParams are used only when the ledger is empty.
type InitParams struct {
	RootIdentity string
	// RootKey is the root API key to keep sealed under the REK, for
	// roots of trust that cannot derive it; "" when it is derived from a
	// software HSM key.
	RootKey     string
	DefaultType string
	// Now is the clock that dates the events written at initialisation;
	// nil means time.Now.
	Now func() time.Time
}

// now returns the time of p's clock.
func (p InitParams) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

// Unsealed describes how the REK was opened.
type Unsealed struct {
	Init     ledger.SystemInitialized
	Created  bool   // the ledger was initialised now
	OpenedBy string // name of the HSM that opened the REK
}

// Unseal opens the ledger's Root Encryption Key with the first of hsms
// under which it is sealed. On an empty ledger it creates the REK, seals
// it under every HSM given (the first in system.initialized.v1, the others
// in system.hsm_added.v1) and records it. On an initialised ledger it
// writes nothing, and if no HSM opens the REK it fails with ErrNoHSM,
// saying under which HSMs the ledger is sealed and why each given one
// failed.
func Unseal(ctx context.Context, store *ledger.Store, proj *projections.Projection, hsms []NamedHSM, p InitParams) (*hsm.REK, Unsealed, error) {
	if err := proj.CatchUp(ctx); err != nil {
		return nil, Unsealed{}, err
	}
	var (
		initialized bool
		sealings    []projections.HSMSealing
		info        Unsealed
	)
	proj.View(func(s *projections.State) {
		initialized = s.Initialized
		for _, h := range s.HSMs {
			sealings = append(sealings, *h)
		}
		info.Init = ledger.SystemInitialized{RootIdentity: s.RootIdentity, DefaultType: s.DefaultType, HSMKeyID: s.HSMKeyID,
			SealedRootKey: s.SealedRootKey}
	})
	if !initialized {
		return initialize(ctx, store, proj, hsms, p)
	}
	var failures []string
	for _, h := range hsms {
		i := slices.IndexFunc(sealings, func(s projections.HSMSealing) bool { return s.KeyID == h.W.KeyID() })
		if i < 0 {
			failures = append(failures, fmt.Sprintf("%q (%s): the ledger is not sealed under this HSM key", h.Name, h.W.KeyID()))
			continue
		}
		rek, err := hsm.OpenREK(ctx, h.W, sealings[i].SealedREK)
		if err != nil {
			failures = append(failures, fmt.Sprintf("%q (%s): %v", h.Name, h.W.KeyID(), err))
			continue
		}
		info.OpenedBy = h.Name
		proj.SetREK(rek)
		return rek, info, nil
	}
	var sealed []string
	for _, s := range sealings {
		sealed = append(sealed, fmt.Sprintf("%q (%s)", s.Name, s.KeyID))
	}
	slices.Sort(sealed)
	if len(hsms) == 0 {
		failures = append(failures, "no HSM is configured")
	}
	return nil, info, fmt.Errorf("%w: cannot unseal with any configured HSM: %s; the ledger is sealed under %s",
		ErrNoHSM, strings.Join(failures, "; "), strings.Join(sealed, ", "))
}

func initialize(ctx context.Context, store *ledger.Store, proj *projections.Projection, hsms []NamedHSM, p InitParams) (*hsm.REK, Unsealed, error) {
	if len(hsms) == 0 {
		return nil, Unsealed{}, errors.New("commands: initialise ledger: no HSM is configured")
	}
	first := hsms[0]
	rek, sealed, err := hsm.NewREK(ctx, first.W, rand.Reader)
	if err != nil {
		return nil, Unsealed{}, err
	}
	init := ledger.SystemInitialized{SealedREK: sealed, HSMKeyID: first.W.KeyID(), RootIdentity: p.RootIdentity,
		DefaultType: p.DefaultType, HSMName: first.Name, HSMKind: first.Kind}
	if p.RootKey != "" {
		if init.SealedRootKey, err = rek.Seal([]byte(p.RootKey), []byte(rootKeyAAD)); err != nil {
			return nil, Unsealed{}, err
		}
	}
	if err := appendSystem(ctx, store, proj, p.now(), p.RootIdentity, "system-init", ledger.TypeSystemInitialized, init); err != nil {
		return nil, Unsealed{}, fmt.Errorf("commands: initialise ledger: %w", err)
	}
	for _, h := range hsms[1:] {
		if err := addHSM(ctx, store, proj, rek, p.now(), p.RootIdentity, h); err != nil {
			return nil, Unsealed{}, err
		}
	}
	proj.SetREK(rek)
	return rek, Unsealed{Init: init, Created: true, OpenedBy: first.Name}, nil
}

// appendSystem appends one event, dated now, on the system subject with
// compare-and-set on that subject, and waits for the projection.
func appendSystem(ctx context.Context, store *ledger.Store, proj *projections.Projection, now time.Time, actor, cmdID, typ string, payload any) error {
	if err := proj.CatchUp(ctx); err != nil {
		return err
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	var last uint64
	proj.View(func(s *projections.State) { last = s.LastSeq(ledger.SystemSubject()) })
	if cmdID == "" {
		cmdID = NewID()
	}
	ev := ledger.Event{Type: typ, ID: NewID(), Time: now.UTC(), Actor: actor,
		Aggregate: ledger.SystemSubject(), CommandID: cmdID, Payload: b}
	seq, dup, err := store.Append(ctx, ev, ledger.Expect{Subject: ledger.SystemSubject(), Seq: last})
	if err != nil {
		return err
	}
	if dup {
		// The command id was appended before: by a retry of this very
		// event, or by another node with the same fixed id (two nodes of
		// a new cluster initialising at once). Only the first is ours.
		orig, found, err := store.Lookup(ctx, ev.Aggregate, cmdID)
		if err != nil {
			return err
		}
		if !found || orig.ID != ev.ID {
			return &ledger.ConflictError{Subject: ledger.SystemSubject(), Expected: last}
		}
	}
	return proj.WaitFor(ctx, seq)
}

// addHSM seals rek under h, checks that h opens it again, and records it
// (dated now).
func addHSM(ctx context.Context, store *ledger.Store, proj *projections.Projection, rek *hsm.REK, now time.Time, actor string, h NamedHSM) error {
	sealed, err := rek.SealFor(ctx, h.W)
	if err != nil {
		return &clientError{msg: fmt.Sprintf("add HSM %q: %v", h.Name, err), wrapped: []error{err}}
	}
	if _, err := hsm.OpenREK(ctx, h.W, sealed); err != nil {
		return &clientError{msg: fmt.Sprintf("add HSM %q: the sealed REK does not open again: %v", h.Name, err), wrapped: []error{err}}
	}
	return appendSystem(ctx, store, proj, now, actor, "", ledger.TypeHSMAdded,
		ledger.HSMAdded{Name: h.Name, Kind: h.Kind, KeyID: h.W.KeyID(), SealedREK: sealed})
}

// AddHSM seals the REK under one more HSM (root only; checked by the
// caller) and records it, so that this HSM alone can start the node.
func (h *Handler) AddHSM(ctx context.Context, actor string, x NamedHSM) error {
	l := h.scopeLock("")
	l.Lock()
	defer l.Unlock()
	if err := h.proj.CatchUp(ctx); err != nil {
		return err
	}
	var exists bool
	h.proj.View(func(s *projections.State) { exists = s.HSMs[x.W.KeyID()] != nil })
	if exists {
		return ErrHSMExists
	}
	return addHSM(ctx, h.store, h.proj, h.rek, h.Now(), actor, x)
}

// RemoveHSM records that the REK sealed under the HSM with this key id,
// or else this name, is no longer used. A name that several sealings
// have is refused (ErrHSMAmbiguous), and so is removing the last one.
func (h *Handler) RemoveHSM(ctx context.Context, actor, name string) error {
	l := h.scopeLock("")
	l.Lock()
	defer l.Unlock()
	if err := h.proj.CatchUp(ctx); err != nil {
		return err
	}
	var (
		target *projections.HSMSealing
		named  []string // key ids of the sealings called name
		n      int
	)
	h.proj.View(func(s *projections.State) {
		n = len(s.HSMs)
		if x := s.HSMs[name]; x != nil {
			c := *x
			target = &c
			return
		}
		for _, x := range s.HSMs {
			if x.Name == name {
				c := *x
				target = &c
				named = append(named, x.KeyID)
			}
		}
	})
	switch {
	case target == nil:
		return ErrHSMNotFound
	case len(named) > 1:
		slices.Sort(named)
		return refuse(ErrHSMAmbiguous, "%q is %s", name, strings.Join(named, ", "))
	case n == 1:
		return ErrLastHSM
	}
	return appendSystem(ctx, h.store, h.proj, h.Now(), actor, "", ledger.TypeHSMRemoved, ledger.HSMRemoved{Name: target.Name, KeyID: target.KeyID})
}

// RootKey returns the root API key sealed in the ledger, or "" if it is
// derived from a software HSM key instead. The key is a plaintext secret,
// so like REK.Unseal it requires hsm.InsecureSecretAccess() at the call.
func RootKey(rek *hsm.REK, init ledger.SystemInitialized, access hsm.SecretAccess) (string, error) {
	if len(init.SealedRootKey) == 0 {
		return "", nil
	}
	b, err := rek.Unseal(init.SealedRootKey, []byte(rootKeyAAD), access)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
