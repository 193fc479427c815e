package projections

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
)

// TestStateAtIndexEqualsReplay: the projection's StateAt, served from the
// index of encoded states in its spill file (spaced closely; with a small
// RAM or disk budget, so that it thins them), gives the state a full
// replay gives, at many random sequences and times, while the ledger
// grows between queries and enclaves are deleted and created again.
func TestStateAtIndexEqualsReplay(t *testing.T) {
	f := newSnapFixture(t, 11, 300)
	cases := []indexCase{
		{"spill", Options{TimeTravelEvery: 8}, func(t *testing.T, x *asofIndex) {
			if x.every != 8 || x.file.size == 0 || x.entries < len(x.points) {
				t.Errorf("index: every %d, %d points, %d entries, file %d bytes; want every 8 and blocks in the file",
					x.every, len(x.points), x.entries, x.file.size)
			}
		}, nil},
		{"ram-budget", Options{TimeTravelEvery: 8, TimeTravelBudget: 16 << 10}, func(t *testing.T, x *asofIndex) {
			if x.every == 8 || (x.indexBytes() > 8<<10 && len(x.points) > 1) {
				t.Errorf("index: every %d, %d points, %d bytes of RAM; want it thinned under half the budget", x.every, len(x.points), x.indexBytes())
			}
		}, nil},
		{"disk-budget", Options{TimeTravelEvery: 8, TimeTravelDisk: 256 << 10}, func(t *testing.T, x *asofIndex) {
			if x.every == 8 || (x.file.size > 256<<10 && len(x.points) > 1) {
				t.Errorf("index: every %d, %d points, file %d bytes; want it thinned under the budget", x.every, len(x.points), x.file.size)
			}
		}, nil},
	}
	for i := range cases {
		c := &cases[i]
		c.o.TimeTravelDir = t.TempDir()
		p, err := OpenWith(context.Background(), f.store, nil, nil, c.o)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		c.p = p
	}
	rng := mrand.New(mrand.NewPCG(11, 2))
	for round := range 4 {
		compareAtRandom(t, f, cases, rng, 15)
		if round == 0 && len(cases[0].p.asof.points) < 2 {
			t.Fatalf("the index kept %d states, want several", len(cases[0].p.asof.points))
		}
		f.recreate(t, pick(f.g, f.g.enclaves), 40)
		f.more(t, 150)
	}
	compareAtRandom(t, f, cases, rng, 6)
	for _, c := range cases {
		x := c.p.asof
		t.Logf("%s: every %d, %d points, %d entries, RAM %d + %d, file %d, live %d", c.name, x.every, len(x.points), x.entries, x.indexBytes(), x.curBytes(), x.file.size, x.live)
		c.check(t, c.p.asof)
		checkUnlinked(t, c.o.TimeTravelDir, c.p.asof.file.f)
	}
	if _, err := cases[0].p.StateAt(context.Background(), 1<<40, time.Time{}); err == nil {
		t.Error("StateAt(beyond the head) err = nil")
	}
}

// checkUnlinked fails t unless f was created in dir and is no longer
// there (on Linux, /proc also shows it deleted).
func checkUnlinked(t *testing.T, dir string, f *os.File) {
	t.Helper()
	if filepath.Dir(f.Name()) != dir {
		t.Errorf("spill file %s, want it in %s", f.Name(), dir)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("ReadDir(%s) = %d entries, %v; want none (the spill file is unlinked)", dir, len(ents), err)
	}
	link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err == nil && !strings.HasSuffix(link, "(deleted)") {
		t.Errorf("/proc/self/fd of the spill file = %q, want it deleted", link)
	}
}

// indexCase is a projection whose index is tuned by o, and what its
// index must look like at the end.
type indexCase struct {
	name  string
	o     Options
	check func(t *testing.T, x *asofIndex)
	p     *Projection
}

// compareAtRandom compares n times the answers of each case's projection
// (whole state and one enclave at a sequence, whole state at a time) with
// a full replay's.
func compareAtRandom(t *testing.T, f *snapFixture, cases []indexCase, rng *mrand.Rand, n int) {
	t.Helper()
	ctx := context.Background()
	head, err := f.store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		seq := 1 + rng.Uint64N(head)
		e := pick(f.g, f.g.enclaves)
		at := asofT0.Add(time.Duration(rng.Int64N(int64(head)+5)) * time.Second)
		if rng.IntN(2) == 0 {
			at = at.Add(time.Duration(rng.Int64N(int64(time.Second))))
		}
		for _, c := range cases {
			compareAt(t, f, c, seq, e, at)
		}
	}
}

// compareAt compares c's answers at seq, for enclave e at seq, and at
// time at with a full replay's.
func compareAt(t *testing.T, f *snapFixture, c indexCase, seq uint64, e string, at time.Time) {
	t.Helper()
	ctx := context.Background()
	want, err := StateAt(ctx, f.store, seq, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.p.StateAt(ctx, seq, time.Time{})
	if err != nil {
		t.Fatalf("%s: StateAt(%d) err = %v", c.name, seq, err)
	}
	sameState(t, c.name+": seq", got, noSubjects(want))
	if got, err = c.p.EnclaveStateAt(ctx, seq, time.Time{}, e); err != nil {
		t.Fatalf("%s: EnclaveStateAt(%d, %s) err = %v", c.name, seq, e, err)
	}
	sameState(t, c.name+": enclave "+e, got, only(want, e))
	if want, err = StateAt(ctx, f.store, 0, at); err != nil {
		t.Fatal(err)
	}
	if got, err = c.p.StateAt(ctx, 0, at); err != nil {
		t.Fatalf("%s: StateAt(%s) err = %v", c.name, at, err)
	}
	sameState(t, c.name+": time "+at.Format(time.RFC3339Nano), got, noSubjects(want))
}

// recreate deletes enclave e, appends n random events elsewhere, and
// creates e again, empty.
func (f *snapFixture) recreate(t *testing.T, e string, n int) {
	t.Helper()
	appendAll(t, f.store, []ledger.Event{f.g.ev(t, ledger.TypeEnclaveDeleted, "", ledger.EnclaveSubject(e), ledger.EnclaveDeleted{Name: e})})
	// Meanwhile e's place draws another enclave, so that a new one is
	// not named as an existing one (gen names them by count).
	i := slices.Index(f.g.enclaves, e)
	if len(f.g.enclaves) > 1 {
		f.g.enclaves[i] = f.g.enclaves[(i+1)%len(f.g.enclaves)]
		f.more(t, n)
	}
	appendAll(t, f.store, []ledger.Event{f.g.ev(t, ledger.TypeEnclaveCreated, "", ledger.EnclaveSubject(e), ledger.EnclaveCreated{Name: e})})
	f.g.enclaves[i] = e
	f.g.keys[e], f.g.ids[e], f.g.roles[e] = map[string]uint32{}, nil, nil
}

// noSubjects is st without its subjects' sequences, which past states
// do not keep.
func noSubjects(st *State) *State {
	st.forgetSubjects()
	return st
}

// only is st with enclave e alone.
func only(st *State, e string) *State {
	for name := range st.Enclaves {
		if name != e {
			delete(st.Enclaves, name)
		}
	}
	return st
}
