package projections

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStateAtIndexSpillFailures: whatever happens to the spill file (its
// blocks changed, a block's place in RAM pointing at another block, reads
// failing, a block changed that the next extension reads), StateAt gives
// the state a full replay gives, never one decoded from a bad block; the
// index is then rebuilt and used again.
func TestStateAtIndexSpillFailures(t *testing.T) {
	for _, c := range []struct {
		name   string
		harm   func(t *testing.T, x *asofIndex)
		extra  int    // events appended after the harm
		budget int    // of RAM: small, so that the extension reads blocks back
		log    string // what the failure logs
	}{
		{"every-byte-flipped", flipAll, 0, 0, "replaying the ledger"},
		{"block-moved", moveBlock, 0, 0, "replaying the ledger"},
		{"reads-fail", func(t *testing.T, x *asofIndex) { x.file.f.Close() }, 0, 0, "replaying the ledger"},
		{"flipped-then-extended", flipAll, 60, 16 << 10, "rebuilding the index"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newSnapFixture(t, 12, 300)
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))
			p, err := OpenWith(context.Background(), f.store, nil, log, Options{TimeTravelEvery: 8, TimeTravelBudget: c.budget, TimeTravelDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			cs := []indexCase{{name: c.name, p: p}}
			rng := mrand.New(mrand.NewPCG(12, 2))
			compareAtRandom(t, f, cs, rng, 2) // builds the index
			for range 3 {
				p.asof.mu.Lock()
				c.harm(t, p.asof)
				p.asof.mu.Unlock()
				f.more(t, c.extra)
				compareAtRandom(t, f, cs, rng, 1)
			}
			if l := logs.String(); !strings.Contains(l, c.log) || !strings.Contains(l, "does not check") && !strings.Contains(l, "file already closed") {
				t.Errorf("log = %q, want %q and the spill file's failure", l, c.log)
			}
			// Rebuilt: the index answers again, from good blocks.
			compareAtRandom(t, f, cs, rng, 5)
			if p.asof.broken || len(p.asof.points) < 2 {
				t.Errorf("index: broken %v, %d points; want it rebuilt", p.asof.broken, len(p.asof.points))
			}
		})
	}
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// flipAll flips every byte of the spill file.
func flipAll(t *testing.T, x *asofIndex) {
	b := make([]byte, x.file.size)
	if _, err := x.file.f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if _, err := x.file.f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
}

// moveBlock points every enclave's latest entry at another enclave's
// block, and every point at another point's global block: each block is
// intact, but not the one expected there.
func moveBlock(t *testing.T, x *asofIndex) {
	var names []string
	for e, h := range x.hist {
		if h[len(h)-1].loc.n > 0 {
			names = append(names, e)
		}
	}
	if len(names) < 2 || len(x.points) < 2 {
		t.Fatalf("%d enclaves, %d points: too few to swap", len(names), len(x.points))
	}
	first := x.hist[names[0]][len(x.hist[names[0]])-1].loc
	for i, e := range names {
		h := x.hist[e]
		if i+1 < len(names) {
			next := x.hist[names[i+1]]
			h[len(h)-1].loc = next[len(next)-1].loc
		} else {
			h[len(h)-1].loc = first
		}
	}
	g := x.points[0].global
	for i := range x.points[:len(x.points)-1] {
		x.points[i].global = x.points[i+1].global
	}
	x.points[len(x.points)-1].global = g
}

// TestStateAtAfterClose: after Close, StateAt still answers (by a full
// replay).
func TestStateAtAfterClose(t *testing.T) {
	t.Parallel()
	f := newSnapFixture(t, 13, 100)
	p, err := OpenWith(context.Background(), f.store, nil, nil, Options{TimeTravelEvery: 8, TimeTravelDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cs := []indexCase{{name: "open", p: p}}
	rng := mrand.New(mrand.NewPCG(13, 2))
	compareAtRandom(t, f, cs, rng, 2)
	p.Close()
	cs[0].name = "closed"
	compareAtRandom(t, f, cs, rng, 2)
	if _, err := p.StateAt(context.Background(), 1<<40, time.Time{}); err == nil {
		t.Error("StateAt(beyond the head) err = nil")
	}
}

// TestStateAtIndexConcurrent: queries running while the ledger grows, and
// the index thins and compacts its file (a small disk budget), all give
// the answers of a full replay.
func TestStateAtIndexConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newSnapFixture(t, 14, 300)
	p, err := OpenWith(ctx, f.store, nil, nil, Options{TimeTravelEvery: 8, TimeTravelDisk: 64 << 10, TimeTravelDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	head, _ := f.store.Head(ctx)
	wants := make([]*State, 8)
	for i := range wants {
		if wants[i], err = StateAt(ctx, f.store, 1+uint64(i)*head/uint64(len(wants)), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 12 {
				want := wants[(g+i)%len(wants)]
				var (
					got *State
					err error
				)
				if g%2 == 0 {
					got, err = p.StateAt(ctx, want.Seq, time.Time{})
				} else {
					got, err = p.EnclaveStateAt(ctx, want.Seq, time.Time{}, "e0")
				}
				if err != nil {
					t.Errorf("query %d/%d err = %v", g, i, err)
					return
				}
				w, _ := decodeState(encodeState(nil, want), nil)
				if g%2 == 1 {
					w = only(w, "e0")
				}
				sameState(t, "concurrent", got, noSubjects(w))
			}
		})
	}
	for range 5 {
		f.more(t, 40)
	}
	wg.Wait()
	if x := p.asof; x.every == 8 {
		t.Errorf("index: every %d; want it thinned by the disk budget", x.every)
	}
}
