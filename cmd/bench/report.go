package bench

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// Percentile returns the p-quantile (0 < p < 1) of sorted latencies, by
// the nearest-rank method.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// lastP is the p-quantile of the last round's latencies.
func (r *Result) lastP(p float64) time.Duration { return Percentile(r.lastRound, p) }

// Median returns the median of the per-round figures v (the mean of the
// middle two for an even count).
func Median[T float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[n/2]
}

func last(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return v[len(v)-1]
}

// roundDur prints d with three significant digits.
func roundDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// cpuText is the server CPU per operation of the last round (or the
// median of all rounds).
func cpuText(v []time.Duration, lastRound bool) string {
	if len(v) == 0 {
		return ""
	}
	d := Median(v)
	if lastRound {
		d = v[len(v)-1]
	}
	return fmt.Sprintf("  server CPU %.1fµs/op", float64(d.Nanoseconds())/1e3)
}

// writeSummary writes the table of medians over the rounds and the
// percentiles over every operation, with each figure's ratio to the
// bare server's where there is one.
func writeSummary(out io.Writer, results []*Result) {
	bare := map[string]*Result{}
	for _, r := range results {
		if r.Target == "bare-mtls" {
			bare[r.Op] = r
		}
	}
	fmt.Fprintln(out, "\nsummary: median of rounds; latency percentiles over every operation")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\ttarget\tops/s\tof bare\tp50\tp99\tp99.9\tserver CPU/op\t")
	for _, r := range results {
		ops := Median(r.OpsPerSec)
		ratio, cpu := "", "-"
		if b := bare[r.Op]; b != nil && b != r && Median(b.OpsPerSec) > 0 {
			ratio = fmt.Sprintf("%.2f", ops/Median(b.OpsPerSec))
		}
		if len(r.CPUPerOp) > 0 {
			cpu = fmt.Sprintf("%.1fµs", float64(Median(r.CPUPerOp).Nanoseconds())/1e3)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n", r.Op, r.Target, ops, ratio,
			roundDur(Percentile(r.Latencies, 0.5)), roundDur(Percentile(r.Latencies, 0.99)), roundDur(Percentile(r.Latencies, 0.999)), cpu)
	}
	tw.Flush()
}
