package commands

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
)

var errStop = errors.New("stop")

// Bootstrap opens the ledger's Root Encryption Key with the HSM. On an
// empty ledger it creates the REK, seals it with w and records it, with the
// root identity, in a system.initialized.v1 event. On an existing ledger a
// wrong HSM key fails with an error wrapping hsm.ErrUnseal and writes
// nothing. created reports whether the ledger was initialised now.
func Bootstrap(ctx context.Context, store *ledger.Store, w hsm.Wrapper, rootIdentity, defaultType string) (rek *hsm.REK, init ledger.SystemInitialized, created bool, err error) {
	seq, err := store.LastSeq(ctx, ledger.SystemSubject())
	if err != nil {
		return nil, init, false, err
	}
	if seq != 0 {
		if init, err = readInit(ctx, store); err != nil {
			return nil, init, false, err
		}
		rek, err := hsm.OpenREK(ctx, w, init.SealedREK)
		if err != nil {
			return nil, init, false, fmt.Errorf("commands: open root encryption key with HSM key %s: %w", w.KeyID(), err)
		}
		return rek, init, false, nil
	}
	rek, sealed, err := hsm.NewREK(ctx, w, rand.Reader)
	if err != nil {
		return nil, init, false, err
	}
	init = ledger.SystemInitialized{SealedREK: sealed, HSMKeyID: w.KeyID(), RootIdentity: rootIdentity, DefaultType: defaultType}
	payload, err := json.Marshal(init)
	if err != nil {
		return nil, init, false, err
	}
	ev := ledger.Event{
		Type: ledger.TypeSystemInitialized, ID: NewID(), Time: time.Now().UTC(), Actor: rootIdentity,
		Aggregate: ledger.SystemSubject(), CommandID: "system-init", Payload: payload,
	}
	if _, _, err := store.Append(ctx, ev, ledger.Expect{Subject: ledger.SystemSubject(), Seq: 0}); err != nil {
		return nil, init, false, fmt.Errorf("commands: initialise ledger: %w", err)
	}
	return rek, init, true, nil
}

func readInit(ctx context.Context, store *ledger.Store) (ledger.SystemInitialized, error) {
	var init ledger.SystemInitialized
	found := false
	_, err := store.Replay(ctx, 1, func(ev ledger.Event) error {
		if ev.Type != ledger.TypeSystemInitialized {
			return nil
		}
		found = true
		if err := json.Unmarshal(ev.Payload, &init); err != nil {
			return fmt.Errorf("commands: decode %s: %w", ev.Type, err)
		}
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return init, err
	}
	if !found {
		return init, errors.New("commands: ledger has a system subject but no system.initialized event")
	}
	return init, nil
}
