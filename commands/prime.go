package commands

import (
	"context"
	"errors"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
)

// prime puts the key version d created or imported into the key cache
// from the material d stored (projections.Projection.Prime), once its
// event is applied: a new key's first use is then not a read of SECRETS.
// Best effort: a version that does not prime is unsealed at its first
// use, as any other.
func (h *Handler) prime(d Decision) {
	if d.Event.Type != ledger.TypeKeyCreated && d.Event.Type != ledger.TypeKeyImported || len(d.Put) != 1 {
		return
	}
	var p ledger.KeyCreated
	if err := ledger.DecodePayload(d.Event.Payload, &p); err != nil {
		return
	}
	if sealed, ok := d.Put[p.SecretRef]; ok {
		h.proj.Prime(d.Event.Enclave, p.Name, p.Version, p.SecretRef, sealed)
	}
}

// errCacheFull stops WarmKeyCache's read of SECRETS.
var errCacheFull = errors.New("key cache full")

// warmSlice paces WarmKeyCache: after each slice of work it pauses as
// long as the slice took, so that it takes at most half a core from
// requests served meanwhile. Unpaced, a million keys warmed up in 21 s
// and halved the rate of requests on one hot key during that time.
const warmSlice = 20 * time.Millisecond

// WarmKeyCache fills the key cache from SECRETS, read in stream order
// (oldest first): every version whose material it finds, and that is in
// the state, live and usable, is unsealed and cached (Prime), until the
// cache is full, ctx ends, or the stream's end at the call. A node runs
// it in the background once it serves: without it, every key's first use
// after a start is a miss, a read of SECRETS that loads the whole block
// holding it, then an unsealing. It returns the versions it cached.
func (h *Handler) WarmKeyCache(ctx context.Context) (primed int, err error) {
	slice := time.Now()
	_, err = h.store.ReadSecrets(ctx, 1, func(e ledger.SecretEntry, sealed []byte) error {
		if st := h.proj.KeyCacheStats(); st.Size >= st.Capacity {
			return errCacheFull
		}
		if busy := time.Since(slice); busy >= warmSlice {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(busy):
			}
			slice = time.Now()
		}
		if enclave, name, version, ok := ledger.SplitSecretRef(e.Ref); ok && h.proj.Prime(enclave, name, version, e.Ref, sealed) {
			primed++
		}
		return nil
	})
	if errors.Is(err, errCacheFull) {
		err = nil
	}
	return primed, err
}
