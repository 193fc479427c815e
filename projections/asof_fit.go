package projections

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"sort"
)

// The budgets of the time-travel index (asof_index.go). RAM: half of the
// budget for the index proper (points and histories), half for the part
// of the head state it keeps decoded (cur). Disk: the spill file.

// Sizes in RAM, for the budget: a point, a history entry, an enclave's
// history (its map entry, name and slice header) and an enclave in cur
// besides its decoded keys.
const (
	pointBytes   = 48
	entryBytes   = 24
	historyBytes = 64
	loadedBytes  = 64
	// decodedPerEncoded is about what a decoded enclave takes in RAM for
	// each byte of its encoding (BenchmarkTimeTravel: 17 to 33 MiB of
	// live heap for 32 MiB estimated so).
	decodedPerEncoded = 2
)

func isSpill(err error) bool { return errors.Is(err, errSpill) }

// indexBytes is the RAM the points and histories take.
func (x *asofIndex) indexBytes() int {
	n := cap(x.points)*pointBytes + x.entries*entryBytes
	for e := range x.hist {
		n += historyBytes + len(e)
	}
	return n
}

// curBytes is an estimate of the RAM the decoded part of cur takes.
func (x *asofIndex) curBytes() int {
	n := len(x.lastGlobal) * decodedPerEncoded
	for e := range x.loaded {
		n += loadedBytes + len(e)
		if h := x.hist[e]; len(h) > 0 {
			n += int(h[len(h)-1].loc.n) * decodedPerEncoded
		}
	}
	return n
}

// ramBytes is an estimate of all the RAM the index takes.
func (x *asofIndex) ramBytes() int { return x.indexBytes() + x.curBytes() }

// fit keeps the index in its budgets after a point was added: it thins
// the points while they take too much RAM or disk, compacts the file
// once it outgrows the disk budget, and drops enclaves from cur.
func (x *asofIndex) fit() error {
	for x.indexBytes() > x.cfg.budget/2 && len(x.points) > 1 {
		x.thin()
	}
	if x.file.size > x.cfg.disk {
		// Compact to at most half the budget, so that compactions are
		// rare next to the writes.
		for x.live > x.cfg.disk/2 && len(x.points) > 1 {
			x.thin()
		}
		if err := x.compact(); err != nil {
			return err
		}
	}
	x.evict()
	return nil
}

// thin drops every second point (keeping the newest, which the next
// extension starts from) and the entries no kept point uses, and doubles
// the spacing.
func (x *asofIndex) thin() {
	kept := make([]asofPoint, 0, len(x.points)/2+1)
	for i, p := range x.points {
		if i%2 == 1 || i == len(x.points)-1 {
			kept = append(kept, p)
		} else {
			x.live -= blockHeader + int64(p.global.n)
		}
	}
	x.points = kept
	x.every *= 2
	for e, h := range x.hist {
		h = x.thinHistory(h)
		x.hist[e] = h
		if len(h) == 0 {
			delete(x.hist, e)
		}
	}
}

// thinHistory keeps the entries of h that a kept point uses: entry i is
// the state of the points from its seq up to the next entry's.
func (x *asofIndex) thinHistory(h []asofEntry) []asofEntry {
	out := h[:0]
	for i, ent := range h {
		j := sort.Search(len(x.points), func(j int) bool { return x.points[j].seq >= ent.seq })
		used := j < len(x.points) && (i == len(h)-1 || x.points[j].seq < h[i+1].seq)
		if used && (ent.loc.n > 0 || len(out) > 0) { // a first entry "does not exist" says nothing
			out = append(out, ent)
			continue
		}
		x.entries--
		if ent.loc.n > 0 {
			x.live -= blockHeader + int64(ent.loc.n)
		}
	}
	clear(h[len(out):])
	return slices.Clip(out)
}

// spillMove is a block to copy into a compacted file.
type spillMove struct {
	loc  *asofLoc
	kind byte
	seq  uint64
	name string
}

// compact copies the blocks in use into a new spill file, checked, in
// the order they were written, and replaces the file with it.
func (x *asofIndex) compact() error {
	var moves []spillMove
	for i := range x.points {
		moves = append(moves, spillMove{&x.points[i].global, blockGlobal, x.points[i].seq, ""})
	}
	for e, h := range x.hist {
		for i := range h {
			if h[i].loc.n > 0 {
				moves = append(moves, spillMove{&h[i].loc, blockEnclave, h[i].seq, e})
			}
		}
	}
	slices.SortFunc(moves, func(a, b spillMove) int { return cmp.Compare(a.loc.off, b.loc.off) })
	nf, err := createSpill(x.cfg.dir)
	if err != nil {
		return err
	}
	var buf []byte
	for _, m := range moves {
		if buf, err = x.file.readRaw(*m.loc, m.kind, m.seq, m.name, buf); err == nil {
			*m.loc, err = nf.appendRaw(buf)
		}
		if err != nil {
			nf.retire()
			return err
		}
	}
	x.file.retire()
	x.file, x.live = nf, nf.size
	return nil
}

// evict drops from cur the enclaves least recently changed while it is
// over its half of the budget, keeping the latest (the next events are
// likely its own). Every enclave in cur is as its last block says (this
// runs after a point), so one dropped is loaded again when needed.
func (x *asofIndex) evict() {
	over := x.curBytes() - x.cfg.budget/2
	if over <= 0 || len(x.loaded) < 2 {
		return
	}
	byAge := slices.SortedFunc(maps.Keys(x.loaded), func(a, b string) int {
		return cmp.Or(cmp.Compare(x.loaded[a], x.loaded[b]), cmp.Compare(a, b))
	})
	for _, e := range byAge[:len(byAge)-1] {
		if over <= 0 {
			break
		}
		n := loadedBytes + len(e)
		if h := x.hist[e]; len(h) > 0 {
			n += int(h[len(h)-1].loc.n) * decodedPerEncoded
		}
		delete(x.loaded, e)
		delete(x.cur.Enclaves, e)
		over -= n
	}
}
