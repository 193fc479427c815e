package projections

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/kmsledger/kmsledger/hsm"
)

// A delta snapshot holds only what changed since a full snapshot, its
// base: the keys changed since (and the names of those gone), the
// subjects written since, and in full what is small (the global part,
// every enclave's identities, policies, tombstones and logins). Loading
// it reads the base, then puts the delta over it (mergeDelta), and gives
// the state a full snapshot at the delta's sequence would have given.
//
// Deltas are cumulative: each holds every change since its base, so a
// load reads two files at most. A snapshot is a delta when the keys it
// would write are fewer than half of all keys (deltaWorth); otherwise it
// is full, and the next deltas are based on it. A bulk of creations then
// no longer re-encodes every key at each snapshot (a million keys took
// about 10 s on a loaded machine, and the tail between two snapshots
// grew to 185,000 events), and the tail stays short.
//
// What changed is recorded as events are applied, from the first full
// snapshot written on (State.track): each enclave holds the keys changed
// (Enclave.touch, called by every key event's function with the name it
// changes), with its subject's sequence. The other subjects written since
// are those whose last sequence in State.subjects is past the base's. An
// enclave
// created since, or a state never snapshotted, counts as all changed. A
// state read from a full snapshot records from it, and one read from a
// delta records the delta's changes (trackDelta): after a restart the
// next snapshot is still a delta over the same base.
//
// The file is format 3 with its own magic and label (snapDelta), and the
// header names the base's sequence and chain value, which are in every
// associated data: a delta cannot be read as a full snapshot, nor put
// over another base. Its name is deltaName(seq, base), which versions
// before deltas do not list.

// enclaveDelta is what a delta says of one enclave besides its content.
type enclaveDelta struct {
	partial bool     // only the keys written changed; else the enclave is whole
	gone    []string // partial: changed keys that no longer exist
}

// track starts recording changes: what is applied from now on is what
// the next delta holds. Called when a full snapshot's state is encoded,
// under the Projection's read lock, by the snapshot writer (the only
// reader of the enclaves' delta fields; Apply, their only other user,
// takes the write lock).
func (s *State) track() {
	for _, e := range s.Enclaves {
		e.partial, e.changed = true, nil
	}
}

// touch records that key name of e changed (or is gone).
func (e *Enclave) touch(name string) {
	if !e.partial {
		return
	}
	if k := e.Keys[name]; k != nil {
		name = k.Name // shares the bytes the key already holds
	}
	if e.changed == nil {
		e.changed = map[string]struct{}{}
	}
	e.changed[name] = struct{}{}
}

// deltaWorth reports whether a delta of s is worth writing: the keys it
// would write are fewer than half of all keys (a state that records no
// changes would write them all).
func (s *State) deltaWorth() bool {
	changed, all := 0, 0
	for _, e := range s.Enclaves {
		all += len(e.Keys)
		if e.partial {
			changed += len(e.changed)
		} else {
			changed += len(e.Keys)
		}
	}
	return changed*2 < all
}

// compressDelta is compressState for a delta of s over the full snapshot
// at sequence base.
func compressDelta(s *State, base uint64, chunk int) (pieces [][]byte, size uint64, err error) {
	return compressItems(s, chunk, func(e *encoder, s *State) { e.deltaItems(s, base) })
}

// deltaItems writes what follows the global part in a delta over the
// full snapshot at sequence base: every enclave, flagged partial or
// whole, then the subjects written since the base (those whose last
// sequence is past it) that no live key carries: a key written since the
// base is in the delta with its own.
func (e *encoder) deltaItems(s *State, base uint64) {
	var rest []string
	for subj, seq := range s.subjects {
		if seq > base && !s.liveKeySubject(subj) {
			rest = append(rest, subj)
		}
	}
	e.u(uint64(len(rest)))
	e.u(uint64(len(s.Enclaves)))
	for _, name := range slices.Sorted(maps.Keys(s.Enclaves)) {
		x := s.Enclaves[name]
		e.mark()
		e.bool(x.partial)
		if !x.partial {
			e.enclave(s, x, true, nil)
			continue
		}
		live, gone := []string{}, []string(nil)
		for _, n := range slices.Sorted(maps.Keys(x.changed)) {
			if x.Keys[n] != nil {
				live = append(live, n)
			} else {
				gone = append(gone, n)
			}
		}
		e.enclave(s, x, true, live)
		e.u(uint64(len(gone)))
		for _, n := range gone {
			e.mark()
			e.s(n)
		}
	}
	e.subjects(s, rest)
}

// decodeDelta reads a delta written by deltaItems: a state holding only
// what the delta holds, and what it says of each enclave.
func decodeDelta(next func() ([]byte, int64, error), dropped func(*Version)) (*State, map[string]*enclaveDelta, error) {
	b, more, err := next()
	if err != nil {
		return nil, nil, err
	}
	s, d := decodeGlobal(b, dropped)
	d.next, d.more = next, more
	d.n() // the subjects at the end, less the keys'
	info := map[string]*enclaveDelta{}
	for range d.n() {
		d.refill()
		x := &enclaveDelta{partial: d.bool()}
		en := d.enclave(s)
		if x.partial {
			for range d.n() {
				d.refill()
				x.gone = append(x.gone, d.s())
			}
		}
		if en != nil {
			info[en.Name] = x
		}
	}
	n := d.n()
	s.subjects = make(map[string]uint64, n)
	for range n {
		d.refill()
		subj := d.s()
		s.subjects[subj] = d.u()
	}
	if err := d.end(); err != nil {
		return nil, nil, err
	}
	return s, info, nil
}

// mergeDelta puts the delta ds (with info, from decodeDelta) over base,
// the state of the delta's base, and returns base, now the state at the
// delta's sequence.
func mergeDelta(base, ds *State, info map[string]*enclaveDelta) (*State, error) {
	base.Seq, base.Initialized, base.SealedREK, base.HSMKeyID = ds.Seq, ds.Initialized, ds.SealedREK, ds.HSMKeyID
	base.RootIdentity, base.DefaultType, base.SealedRootKey = ds.RootIdentity, ds.DefaultType, ds.SealedRootKey
	base.HSMs, base.RemovedHSMs = ds.HSMs, ds.RemovedHSMs
	for name, b := range base.Enclaves {
		if ds.Enclaves[name] == nil {
			base.retireKeys(b)
			delete(base.Enclaves, name) // deleted since the base
		}
	}
	for name, x := range ds.Enclaves {
		b := base.Enclaves[name]
		if !info[name].partial {
			if b != nil {
				for n, k := range b.Keys {
					if x.Keys[n] == nil {
						base.retire(name, k)
					}
				}
			}
			x.drop = base.dropped
			base.Enclaves[name] = x
			continue
		}
		if b == nil {
			return nil, fmt.Errorf("%w: the delta changes enclave %q, which its base does not hold", errSnapshot, name)
		}
		b.CreatedAt, b.CreatedBy = x.CreatedAt, x.CreatedBy
		b.Identities, b.Policies, b.Tombstones, b.AppRoles, b.Tokens = x.Identities, x.Policies, x.Tombstones, x.AppRoles, x.Tokens
		for n, k := range x.Keys {
			b.Keys[n] = k
			b.setPending(n, k.pending != nil)
		}
		for _, n := range info[name].gone {
			// Gone by an event on its own subject since the base: the
			// delta's subjects hold its sequence (deltaItems).
			delete(b.Keys, n)
			b.setPending(n, false)
		}
		b.resetIndexes()
	}
	for subj, seq := range ds.subjects {
		base.subjects[subj] = seq
	}
	for a := range ds.actors {
		base.intern(a)
	}
	base.trackDelta(ds, info)
	return base, nil
}

// trackDelta records, in the state a delta ds (with info) was merged
// into, the changes the delta holds: the next delta over the same base
// holds them too.
func (s *State) trackDelta(ds *State, info map[string]*enclaveDelta) {
	s.track()
	for name, x := range ds.Enclaves {
		e := s.Enclaves[name]
		if !info[name].partial {
			e.partial = false
			continue
		}
		// What touch records, sized at once (track left it empty); the
		// merged keys' names are their own, and the gone ones have no key.
		gone := info[name].gone
		e.changed = make(map[string]struct{}, len(x.Keys)+len(gone))
		for n := range x.Keys {
			e.changed[n] = struct{}{}
		}
		for _, n := range gone {
			e.changed[n] = struct{}{}
		}
	}
}

// readDelta reads the delta at path (header h, its chunks from next):
// it decodes it, reads its base from the same directory, checks that the
// base is the one the header names, and returns the merged state.
func readDelta(ctx context.Context, path string, h *snapHeader, next func() ([]byte, int64, error),
	unseal func(context.Context, map[string][]byte) (*hsm.REK, error), dropped func(*Version)) (*State, error) {
	ds, info, err := decodeDelta(next, dropped)
	if err != nil {
		return nil, err
	}
	basePath := filepath.Join(filepath.Dir(path), snapName(h.Base.Seq))
	grow := &growth{subjects: len(ds.subjects), keys: make(map[string]int, len(ds.Enclaves))}
	for name, x := range ds.Enclaves {
		grow.keys[name] = len(x.Keys)
	}
	base, bh, err := readSnapshot(ctx, basePath, unseal, dropped, grow)
	if err != nil {
		return nil, fmt.Errorf("%w: its base: %w", errSnapshot, err)
	}
	if bh.format.delta || bh.Seq != h.Base.Seq || bh.Chain != h.Base.Chain {
		return nil, fmt.Errorf("%w: its base %s is not the snapshot it was made from", errSnapshot, basePath)
	}
	st, err := mergeDelta(base, ds, info)
	if err == nil {
		st.deltaBase = h.Base
	}
	return st, err
}

// encode encodes st for a snapshot with header h (its Size, and Base for
// a delta, set here): a delta of the changes since the newest full
// snapshot if that is worth it, else a full one, after which changes are
// recorded afresh. Under the Projection's read lock and s.mu.
func (s *snapshotter) encode(st *State, h *snapHeader) (pieces [][]byte, f *snapFormat, err error) {
	if s.deltaNext(st) {
		h.Base = s.base
		pieces, h.Size, err = compressDelta(st, s.base.Seq, snapChunk)
		return pieces, snapDelta, err
	}
	pieces, h.Size, err = compressState(st, snapChunk)
	st.track()
	s.base = nil // until this one is written: the changes recorded are since it
	return pieces, snapV3, err
}

// deltaNext reports whether the next snapshot of st is a delta: there is
// a full snapshot to base it on, and fewer than half of the keys changed
// since it. Under the Projection's read lock and s.mu.
func (s *snapshotter) deltaNext(st *State) bool { return s.base != nil && st.deltaWorth() }

// pruneSnapshots removes from dir the files older than the keep-th
// newest full snapshot, and every delta older than a newer one of the
// same base (deltas are cumulative); never the full snapshot at
// sequence base, which the next deltas need (0: none).
func pruneSnapshots(dir string, keep int, base uint64) {
	fulls, seen := 0, map[uint64]bool{}
	for _, path := range snapFiles(dir) {
		seq, from, _ := parseSnapName(filepath.Base(path))
		switch {
		case from == 0 && seq == base && base != 0:
			fulls++
		case fulls >= keep, from != 0 && seen[from]:
			os.Remove(path)
		case from == 0:
			fulls++
		default:
			seen[from] = true
		}
	}
}
