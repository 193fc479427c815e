package commands

import (
	"context"
	"errors"

	"github.com/kmsledger/kmsledger/projections"
)

// SealConfigured seals the REK under every HSM of hsms that has no
// sealing yet, as minkms does at start: adding an HSM to the
// configuration and restarting is enough. An HSM whose sealing was
// removed on purpose (RemoveHSM) is left alone until AddHSM. Each
// sealing is the same system.hsm_added.v1 event as AddHSM's, with actor
// as its actor. It returns the names of the HSMs sealed now; an HSM that
// fails is reported in the (joined) error and the others are still
// sealed.
func (h *Handler) SealConfigured(ctx context.Context, actor string, hsms []NamedHSM) ([]string, error) {
	var (
		sealed []string
		errs   []error
	)
	for _, x := range hsms {
		done, err := h.sealIfNew(ctx, actor, x)
		if err != nil {
			errs = append(errs, err)
		} else if done {
			sealed = append(sealed, x.Name)
		}
	}
	return sealed, errors.Join(errs...)
}

// sealIfNew seals the REK under x unless it is sealed under x already or
// its sealing was removed; it reports whether it sealed.
func (h *Handler) sealIfNew(ctx context.Context, actor string, x NamedHSM) (bool, error) {
	l := h.scopeLock("")
	l.Lock()
	defer l.Unlock()
	wanted := func() (bool, error) {
		if err := h.proj.CatchUp(ctx); err != nil {
			return false, err
		}
		var want bool
		h.proj.View(func(s *projections.State) { want = s.HSMs[x.W.KeyID()] == nil && !s.RemovedHSMs[x.W.KeyID()] })
		return want, nil
	}
	if want, err := wanted(); err != nil || !want {
		return false, err
	}
	err := addHSM(ctx, h.store, h.proj, h.rek, h.Now(), actor, x)
	if err != nil {
		// Another node of a cluster may have sealed it (or removed
		// it) at the same time: then there is nothing left to do.
		if want, err2 := wanted(); err2 == nil && !want {
			return false, nil
		}
	}
	return err == nil, err
}
