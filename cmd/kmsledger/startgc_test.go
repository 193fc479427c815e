package main

import (
	"runtime/debug"
	"testing"
)

// TestRelaxGC: the start runs at startGCPercent and the operator's
// percent comes back after it; a higher percent, or GOGC=off, is left
// alone during the start too.
func TestRelaxGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, op := range []int{100, 50, startGCPercent * 2, -1} {
		debug.SetGCPercent(op)
		restore := relaxGC()
		want := startGCPercent
		if op < 0 || op >= startGCPercent {
			want = op
		}
		if got := debug.SetGCPercent(want); got != want {
			t.Errorf("GOGC=%d: percent during the start %d, want %d", op, got, want)
		}
		restore()
		if got := debug.SetGCPercent(op); got != op {
			t.Errorf("GOGC=%d: percent after the start %d, want it back", op, got)
		}
	}
}
