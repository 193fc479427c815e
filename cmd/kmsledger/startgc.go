package main

import "runtime/debug"

// startGCPercent is the collector's target while the server starts: the
// heap may grow to five times what the last collection left live, instead
// of twice (GOGC=100). Most of what a start allocates stays live (the
// projection and the streams' indexes: about 860 MB of the 950 MB a
// million keys' start allocates), so at GOGC=100 the collector ran ten
// times as the heap doubled, marking about 1 s of CPU beside the start;
// at 400 it runs four times, the last at about a tenth of the state.
// Measured after kill -9 with a million keys, four starts each: ready
// after 4.07–4.45 s instead of 4.20–4.63 s, 6.7–7.3 s of CPU instead of
// 6.9–7.6 s, 1.05–1.07 GB resident at ready either way (BENCHMARKS.md,
// "Start after a bulk").
const startGCPercent = 400

// relaxGC sets startGCPercent for the start and returns what sets the
// operator's percent (GOGC) back. A percent at or above it, or GOGC=off,
// is left as it is. A memory limit (GOMEMLIMIT) stays in force
// throughout: the collector runs near it whatever the percent.
func relaxGC() (restore func()) {
	prev := debug.SetGCPercent(startGCPercent)
	if prev < 0 || prev >= startGCPercent {
		debug.SetGCPercent(prev)
		return func() {}
	}
	return func() { debug.SetGCPercent(prev) }
}
