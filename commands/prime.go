package commands

import "github.com/kmsledger/kmsledger/ledger"

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
