package projections

import (
	"context"
	"errors"
	"time"
)

// snapKind is what a snapshot call wrote.
type snapKind uint8

const (
	wroteNone  snapKind = iota // nothing: the newest snapshot was current, or it failed
	wroteFull                  // a full snapshot, the base of the deltas after it
	wroteDelta                 // a delta over the newest full snapshot
)

// pacing keeps the background writer to about a tenth of the time:
// before a snapshot it pauses nine times as long as the last one took,
// except before the first delta over a new full snapshot, which does not
// wait. A full snapshot of a large state takes seconds, the first delta
// after it a fraction of that (it holds what changed since it): before,
// that delta waited nine times the full one's time, and a node killed then
// replayed a tail of that many more events (during a bulk of creations,
// 76,000 and 111,000 events after full snapshots of 414,000 and 889,000
// keys). The full snapshot's time is not paid back by a pause; it comes
// only once half of the keys changed since the last one (deltaWorth), so
// its cost is spread over at least that many key events.
type pacing struct {
	last  time.Duration // how long the last snapshot took
	delta time.Duration // how long the last delta over the current base took; 0: none yet
}

// pause is how long to wait before a snapshot of kind next.
func (q *pacing) pause(next snapKind) time.Duration {
	if next == wroteDelta {
		return 9 * q.delta
	}
	return 9 * q.last
}

// wrote records that a snapshot of kind took took.
func (q *pacing) wrote(kind snapKind, took time.Duration) {
	switch kind {
	case wroteFull:
		q.last, q.delta = took, 0
	case wroteDelta:
		q.last, q.delta = took, took
	}
}

// nextKind is the kind of snapshot the writer would write now
// (snapshotter.deltaNext).
func (p *Projection) nextKind() snapKind {
	s := p.snap
	s.mu.Lock()
	defer s.mu.Unlock()
	p.mu.RLock()
	defer p.mu.RUnlock()
	if s.deltaNext(p.st) {
		return wroteDelta
	}
	return wroteFull
}

// startSnapshots starts the background writer.
func (p *Projection) startSnapshots() {
	s := p.snap
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var tick <-chan time.Time
		if s.cfg.Interval >= 0 {
			t := time.NewTicker(cmpOr(s.cfg.Interval, DefaultSnapshotInterval))
			defer t.Stop()
			tick = t.C
		}
		var pace pacing
		for {
			select {
			case <-s.done:
				return
			case <-s.kick:
				// A kick sent while the last snapshot was being written
				// is stale: that snapshot took its events.
				if !p.snapDue(s.cfg.every()) {
					continue
				}
			case <-tick:
				if !p.intervalDue() {
					continue
				}
			}
			select {
			case <-s.done:
				return
			case <-time.After(pace.pause(p.nextKind())):
			}
			start := time.Now()
			_, kind, err := p.snapshot(context.Background())
			if err != nil && !errors.Is(err, ErrSealed) {
				p.log.Error("projection snapshot", "err", err)
			}
			pace.wrote(kind, time.Since(start))
		}
	}()
}
