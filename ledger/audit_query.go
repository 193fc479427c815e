package ledger

import (
	"context"
	"fmt"
)

// Records calls fn for every record in AUDIT messages [from, to] (to 0 =
// the head when called), as Store.AuditRecords does on the Store this
// Auditor stores into: the API reads back the records of the stream it
// audits into through the Auditor it already holds.
func (a *Auditor) Records(ctx context.Context, from, to uint64, fn func(seq uint64, r AuditRecord) error) error {
	return a.s.AuditRecords(ctx, from, to, fn)
}

// Head returns the sequence of the last AUDIT message (0 = none yet).
func (a *Auditor) Head(ctx context.Context) (uint64, error) {
	info, err := a.s.audit.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("ledger: audit head: %w", a.s.mapErr(err))
	}
	return info.State.LastSeq, nil
}
