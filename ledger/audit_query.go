package ledger

import "context"

// Records calls fn for every record in AUDIT messages [from, to] (to 0 =
// the head when called), as Store.AuditRecords does on the Store this
// Auditor stores into: the API reads back the records of the stream it
// audits into through the Auditor it already holds.
func (a *Auditor) Records(ctx context.Context, from, to uint64, fn func(seq uint64, r AuditRecord) error) error {
	return a.s.AuditRecords(ctx, from, to, fn)
}
