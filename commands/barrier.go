package commands

import (
	"context"
	"errors"

	"github.com/kmsledger/kmsledger/ledger"
)

// grants are the event types that can only add to what a caller may do
// or use. Every other event may take something away (an identity, a
// policy or a grant, a key or a version, an enclave, a token): in a
// cluster the command that wrote it returns only once the other nodes
// have applied it, or the barrier's timeout ended (propagate). An event
// type not listed here is treated as a revocation.
//
// A grant needs no barrier: a node that has not applied it yet refuses
// only after catching up with the stream head (api.Server.decideCurrent,
// the key reads), so it is in force on every node on the next request.
var grants = map[string]bool{
	ledger.TypeKeyCreated:           true,
	ledger.TypeKeyImported:          true,
	ledger.TypeKeyEnabled:           true,
	ledger.TypeKeyRestored:          true,
	ledger.TypeEnclaveCreated:       true,
	ledger.TypeIdentityCreated:      true,
	ledger.TypeHSMAdded:             true,
	ledger.TypeTokenIssued:          true,
	ledger.TypeTokenRenewed:         true,
	ledger.TypeAppRoleSecretIDAdded: true,
	ledger.TypeSystemInitialized:    true,
	ledger.TypeCheckpoint:           true,
	ledger.TypeSigningKey:           true,
}

// revokes reports whether an event of type typ may take something away.
func revokes(typ string) bool { return !grants[typ] }

// propagate waits, in a cluster, until every other node heard from lately
// has applied seq (ledger.Store.Barrier). The event is stored whatever
// happens here: a node that did not confirm in time is logged, and is
// either cut off (its staleness bound applies) or behind.
func (h *Handler) propagate(ctx context.Context, seq uint64, typ string) {
	if !revokes(typ) {
		return
	}
	if _, err := h.store.Barrier(ctx, seq); err != nil {
		var be *ledger.ErrBarrier
		if errors.As(err, &be) {
			h.log.Warn("a revocation is stored but not yet confirmed by every node of the cluster", "type", typ, "seq", seq, "missing", be.Missing)
			return
		}
		h.log.Warn("a revocation is stored; could not ask the other nodes to confirm it", "type", typ, "seq", seq, "err", err)
	}
}
