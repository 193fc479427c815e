package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/kmsledger/kmsledger/projections"
)

// SchedulerActor is the actor recorded on events the scheduler appends.
const SchedulerActor = "kmsledger:scheduler"

// DestroyDue carries out every scheduled key deletion whose deadline has
// passed, also those that passed while the server was down. It returns
// how many keys it destroyed.
func (h *Handler) DestroyDue(ctx context.Context) (int, error) {
	if err := h.proj.CatchUp(ctx); err != nil {
		return 0, err
	}
	now := h.Now()
	type dueKey struct {
		cmd      DestroyScheduledKey
		deadline time.Time
	}
	var due []dueKey
	h.proj.View(func(s *projections.State) {
		for _, e := range s.Enclaves {
			for k := range e.PendingDeletion() {
				if !now.Before(k.DeletionDeadline()) {
					due = append(due, dueKey{DestroyScheduledKey{Enclave: e.Name, Name: k.Name}, k.DeletionDeadline()})
				}
			}
		}
	})
	n := 0
	for _, d := range due {
		c := d.cmd
		// The command id makes a destruction carried out by two nodes at
		// once (or retried) a single event; the deadline in it keeps a
		// later schedule of a re-created key from looking like a retry.
		id := fmt.Sprintf("destroy-scheduled/%s/%s/%d", c.Enclave, c.Name, d.deadline.UnixNano())
		if _, err := h.Execute(ctx, SchedulerActor, id, c); err != nil {
			h.log.Error("scheduled key deletion failed", "enclave", c.Enclave, "key", c.Name, "err", err)
			continue
		}
		h.log.Info("scheduled key deletion carried out", "enclave", c.Enclave, "key", c.Name)
		n++
	}
	return n, nil
}

// RunScheduler calls DestroyDue now and then every interval until ctx
// ends.
func (h *Handler) RunScheduler(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		// In a cluster, the node that writes LEDGER runs the deletions;
		// their command ids make a second run a duplicate anyway.
		if !h.store.IsLeader() {
		} else if _, err := h.DestroyDue(ctx); err != nil && ctx.Err() == nil {
			h.log.Error("scheduler", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
