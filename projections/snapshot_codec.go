package projections

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// The snapshot codec writes a State as compact binary: unsigned varints,
// strings and byte strings prefixed by their length, times as Unix
// nanoseconds (0 = zero time). Maps are written in sorted order, so that
// equal states encode to equal bytes (the tests compare states so). A
// live key's subject's sequence is written with the key (subjects.go);
// the other subjects follow the enclaves.
//
// A snapshot is sealed in chunks that end only where an item starts (an
// enclave, a key, an identity, a policy, a tombstone, a login, another
// subject: encoder.mark), so that each chunk is decoded as soon as it is
// opened, and the whole encoded state is never held at once
// (snapshot_file.go). Version 3 added those cut points and the count of
// all subjects after the global part (it sized one map of them, before
// live keys held their own; readers now size the map by the list that
// follows the enclaves).

// codecVersion is the first byte of an encoded state.
const codecVersion = 3

// errCodec reports an encoded state that does not decode.
var errCodec = errors.New("projections: snapshot does not decode")

type encoder struct {
	b []byte
	// chunk > 0 makes mark note a cut wherever at least chunk bytes were
	// written since the last one; cuts are the ends of all pieces but
	// the last.
	chunk int
	cuts  []int
	// flush, if set, takes each piece instead: mark hands it the bytes
	// written once they are chunk or more, and starts again from none.
	flush func(piece []byte)
	ref   []byte // scratch for a version's SECRETS reference
}

// mark says that an item starts here, where a snapshot chunk may end
// (decoder.refill).
func (e *encoder) mark() {
	if e.flush != nil {
		if len(e.b) >= e.chunk {
			e.flush(e.b)
			e.b = e.b[:0]
		}
		return
	}
	last := 0
	if n := len(e.cuts); n > 0 {
		last = e.cuts[n-1]
	}
	if e.chunk > 0 && len(e.b)-last >= e.chunk {
		e.cuts = append(e.cuts, len(e.b))
	}
}

func (e *encoder) u(x uint64)  { e.b = binary.AppendUvarint(e.b, x) }
func (e *encoder) i(x int64)   { e.b = binary.AppendVarint(e.b, x) }
func (e *encoder) s(x string)  { e.u(uint64(len(x))); e.b = append(e.b, x...) }
func (e *encoder) by(x []byte) { e.u(uint64(len(x))); e.b = append(e.b, x...) }
func (e *encoder) t(x time.Time) {
	e.i(unixNano(x))
}
func (e *encoder) bool(x bool) {
	if x {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// encodeState appends s to b.
func encodeState(b []byte, s *State) []byte {
	return encodeChunks(b, s, 0).b
}

// encodeChunks appends s to b, noting a cut at the first item start
// after every chunk bytes (none if chunk is 0).
func encodeChunks(b []byte, s *State, chunk int) *encoder {
	e := &encoder{b: encodeGlobal(b, s), chunk: chunk}
	e.items(s)
	return e
}

// encodePieces encodes s, its global part then what items writes, in
// the pieces encodeChunks would cut it into, and hands each to flush as
// soon as it is cut, the last one too; the piece's bytes are reused
// afterwards.
func encodePieces(s *State, chunk int, items func(*encoder, *State), flush func(piece []byte)) {
	e := &encoder{b: encodeGlobal(make([]byte, 0, chunk+chunk/4), s), chunk: chunk, flush: flush}
	items(e, s)
	flush(e.b)
}

// items writes what follows the global part: the enclaves and the other
// subjects.
func (e *encoder) items(s *State) {
	var other []string
	for subj := range s.subjects {
		if !s.liveKeySubject(subj) { // a live key's is written with it
			other = append(other, subj)
		}
	}
	n := len(other) // every subject, for readers that size one map by it
	for _, x := range s.Enclaves {
		n += len(x.Keys)
	}
	e.u(uint64(n))
	e.u(uint64(len(s.Enclaves)))
	for _, name := range slices.Sorted(maps.Keys(s.Enclaves)) {
		e.mark()
		e.enclave(s, s.Enclaves[name], true, nil)
	}
	e.subjects(s, other)
}

// subjects writes the subjects subjs (sorted here) with their sequences.
func (e *encoder) subjects(s *State, subjs []string) {
	slices.Sort(subjs)
	e.u(uint64(len(subjs)))
	for _, subj := range subjs {
		e.mark()
		e.s(subj)
		e.u(s.subjects[subj])
	}
}

// encodeGlobal appends what s holds outside its enclaves and subjects.
func encodeGlobal(b []byte, s *State) []byte {
	e := &encoder{b: b}
	e.b = append(e.b, codecVersion)
	e.u(s.Seq)
	e.bool(s.Initialized)
	e.by(s.SealedREK)
	e.s(s.HSMKeyID)
	e.s(s.RootIdentity)
	e.s(s.DefaultType)
	e.by(s.SealedRootKey)
	e.u(uint64(len(s.HSMs)))
	for _, id := range slices.Sorted(maps.Keys(s.HSMs)) {
		h := s.HSMs[id]
		e.s(h.Name)
		e.s(h.Kind)
		e.s(h.KeyID)
		e.by(h.SealedREK)
		e.t(h.AddedAt)
		e.s(h.AddedBy)
	}
	e.u(uint64(len(s.RemovedHSMs)))
	for _, id := range slices.Sorted(maps.Keys(s.RemovedHSMs)) {
		e.s(id)
		e.bool(s.RemovedHSMs[id])
	}
	return e.b
}

// encodeEnclave appends enclave x of s without its subjects.
func encodeEnclave(b []byte, s *State, x *Enclave) []byte {
	e := &encoder{b: b}
	e.enclave(s, x, false, nil)
	return e.b
}

// enclave writes x; with subjects, each key's subject sequence too. Its
// keys are those named in keys (sorted, each in x.Keys), or all if keys
// is nil.
func (e *encoder) enclave(s *State, x *Enclave, subjects bool, keys []string) {
	e.s(x.Name)
	e.t(x.CreatedAt)
	e.s(x.CreatedBy)
	if keys == nil {
		keys = slices.Sorted(maps.Keys(x.Keys))
	}
	e.u(uint64(len(keys)))
	for _, name := range keys {
		k := x.Keys[name]
		e.mark()
		e.s(name)
		if subjects {
			e.u(k.seq) // 0: none
		} else {
			e.u(0)
		}
		e.key(x.Name, k)
	}
	e.u(uint64(len(x.Identities)))
	for _, id := range slices.Sorted(maps.Keys(x.Identities)) {
		e.mark()
		e.identity(x.Identities[id])
	}
	e.u(uint64(len(x.Policies)))
	for _, name := range slices.Sorted(maps.Keys(x.Policies)) {
		p := x.Policies[name]
		e.mark()
		e.s(p.Name)
		e.rules(p.Allow)
		e.rules(p.Deny)
		e.t(p.CreatedAt)
		e.s(p.CreatedBy)
	}
	e.u(uint64(len(x.Tombstones)))
	for _, name := range slices.Sorted(maps.Keys(x.Tombstones)) {
		t := x.Tombstones[name]
		e.mark()
		e.s(name)
		e.s(t.Name)
		e.t(t.DestroyedAt)
		e.s(t.DestroyedBy)
		e.s(t.Reason)
	}
	e.logins(x) // snapshot_transit.go
}

func (e *encoder) key(enclave string, k *Key) {
	e.s(k.Name)
	e.s(k.CreatedBy)
	e.i(k.created)
	e.bool(k.pending != nil)
	if k.pending != nil {
		e.t(k.pending.deadline)
		e.s(k.pending.by)
	}
	e.u(uint64(k.MaxVer))
	e.bool(k.Disabled)
	e.transitSettings(k.Transit())
	e.u(uint64(len(k.versions)))
	for _, v := range k.versions {
		e.u(uint64(v.Version))
		e.bool(v.Imported)
		e.bool(v.Disabled)
		e.s(v.Type)
		e.s(v.CreatedBy)
		e.ref = v.AppendSecretRef(e.ref[:0], enclave, k.Name)
		e.by(e.ref) // as e.s(v.SecretRef(…)), without a string per version
		e.s(v.Fingerprint())
		e.i(v.created)
		var src []byte
		if s := v.Source(); s != nil {
			src, _ = json.Marshal(s) // plain strings and bools: never fails
		}
		e.by(src)
	}
}

func (e *encoder) identity(x *Identity) {
	e.s(x.Identity)
	e.s(x.Privilege)
	e.s(x.Policy)
	e.bool(x.ServiceAccount)
	e.s(x.Parent)
	e.bool(x.Tags != nil)
	e.u(uint64(len(x.Tags)))
	for _, k := range slices.Sorted(maps.Keys(x.Tags)) {
		e.s(k)
		e.s(x.Tags[k])
	}
	e.t(x.CreatedAt)
	e.s(x.CreatedBy)
}

func (e *encoder) rules(r map[string][]string) {
	e.bool(r != nil)
	e.u(uint64(len(r)))
	for _, k := range slices.Sorted(maps.Keys(r)) {
		e.s(k)
		e.bool(r[k] != nil)
		e.u(uint64(len(r[k])))
		for _, x := range r[k] {
			e.s(x)
		}
	}
}

// decoder reads what encoder wrote; the first error sticks and every
// later read returns zero values. A snapshot is read chunk by chunk:
// next returns the chunk after b, and at least the bytes of the chunks
// after that one (refill).
type decoder struct {
	b     []byte
	err   error
	next  func() ([]byte, int64, error) // io.EOF after the last chunk; nil: b is all there is
	more  int64                         // at least the bytes of the chunks after b
	grow  *growth                       // room for a delta's additions (nil: none)
	cells []keyCell                     // keyCells not yet handed out (newKeyCell)
}

// refill moves to the next chunk once b is used up; it is called
// wherever the encoder calls mark, the only places a chunk may end. The
// bytes of the chunk before are not read again.
func (d *decoder) refill() {
	for len(d.b) == 0 && d.next != nil && d.err == nil {
		b, more, err := d.next()
		d.more = more
		switch {
		case errors.Is(err, io.EOF):
			d.next = nil
		case err != nil:
			d.err = err
		}
		d.b = b
	}
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errCodec, what)
	}
	d.b = nil
}

func (d *decoder) u() uint64 {
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad unsigned integer")
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) i() int64 {
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad integer")
		return 0
	}
	d.b = d.b[n:]
	return x
}

// n reads a count, refusing one larger than the bytes left (each element
// takes at least one byte), so a corrupt count cannot allocate much.
func (d *decoder) n() int {
	x := d.u()
	if x > uint64(len(d.b))+uint64(d.more) {
		d.fail("count beyond the end")
		return 0
	}
	return int(x)
}

func (d *decoder) raw() []byte {
	n := d.n()
	if n > len(d.b) {
		d.fail("string beyond its chunk")
		return nil
	}
	x := d.b[:n:n]
	d.b = d.b[n:]
	return x
}

func (d *decoder) s() string { return string(d.raw()) }

func (d *decoder) by() []byte {
	x := d.raw()
	if len(x) == 0 {
		return nil
	}
	return slices.Clone(x)
}

func (d *decoder) t() time.Time { return fromUnixNano(d.i()) }

func (d *decoder) bool() bool {
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail("bad boolean")
		return false
	}
	x := d.b[0] == 1
	d.b = d.b[1:]
	return x
}
