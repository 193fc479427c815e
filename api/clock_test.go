package api_test

import (
	"testing"
	"time"
)

// TestScheduleDeletionUsesHandlerClock: the deadline of schedule-deletion
// is taken from the command handler's clock (Handler.Now), the clock
// Decide checks it against, not from the wall clock.
func TestScheduleDeletionUsesHandlerClock(t *testing.T) {
	s := newStack(t)
	c := s.client("")
	mustOK(t, c.CreateEnclave(ctx, "e1"))
	mustOK(t, c.CreateKey(ctx, "e1", "k", "", false))

	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	s.Handler.Now = func() time.Time { return now }
	mustOK(t, c.ScheduleKeyDeletion(ctx, "e1", "k", "36h"))
	info, err := c.KeyInfo(ctx, "e1", "k")
	mustOK(t, err)
	if want := now.Add(36 * time.Hour); info.DeletionDeadline == nil || !info.DeletionDeadline.Equal(want) {
		t.Fatalf("deletion deadline = %v, want %v (the handler's clock + 36h)", info.DeletionDeadline, want)
	}
}
