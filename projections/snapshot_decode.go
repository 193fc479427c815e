package projections

import (
	"encoding/json"
	"io"

	"github.com/kmsledger/kmsledger/ledger"
)

// decodeState reads a state written by encodeState. dropped is the new
// state's State.dropped (nil if nobody cares).
func decodeState(b []byte, dropped func(*Version)) (*State, error) {
	return decodeChunks(onePiece(b), dropped, nil)
}

// onePiece returns b as the only chunk.
func onePiece(b []byte) func() ([]byte, int64, error) {
	done := false
	return func() ([]byte, int64, error) {
		if done {
			return nil, 0, io.EOF
		}
		done = true
		return b, 0, nil
	}
}

// mapHeadroom: the largest maps of a decoded state (subjects, an
// enclave's keys) get room for 1/mapHeadroom more entries than the
// snapshot holds. The tail replayed after the snapshot adds to them, and
// a map that outgrows its room rehashes its entries on the way: a start
// after kill -9 with a tail of 185,000 creations after a snapshot of
// 815,000 keys spent 0.9 s of its 6 s replay there (BENCHMARKS.md). The
// room costs about 7 MB a million entries.
const mapHeadroom = 4

// growth is room that a decoded state's largest maps get beyond what the
// snapshot holds and mapHeadroom: a delta, read before its base, says
// how many subjects and keys of each enclave it may add to it
// (readDelta). Without it, a base of 495,000 keys under a delta of
// 465,000 rehashed its maps while the delta was merged, 0.85 s of the
// 4.4 s read (BENCHMARKS.md, "Start after a
// bulk").
type growth struct {
	subjects int
	keys     map[string]int // enclave name -> keys
}

// decodeChunks reads a state written by encodeChunks from its pieces, one
// at a time: next returns the next piece and at least the bytes of the
// pieces after it, and io.EOF after the last. Each piece is decoded
// before the next is asked for. grow (nil: none) sizes its maps for
// what a delta will add.
func decodeChunks(next func() ([]byte, int64, error), dropped func(*Version), grow *growth) (*State, error) {
	b, more, err := next()
	if err != nil {
		return nil, err
	}
	s, d := decodeGlobal(b, dropped)
	d.next, d.more, d.grow = next, more, grow
	d.n() // every subject; live keys' are read with them (subjects.go)
	for range d.n() {
		d.refill()
		d.enclave(s)
	}
	n := d.n()
	room := n
	if grow != nil {
		room += grow.subjects
	}
	s.subjects = make(map[string]uint64, room+room/mapHeadroom)
	for range n {
		d.refill()
		subj := d.s()
		s.subjects[subj] = d.u()
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return s, nil
}

// end checks that everything was read: no byte and no chunk is left.
func (d *decoder) end() error {
	d.refill()
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 || d.next != nil {
		return errCodec
	}
	return nil
}

// decodeGlobal reads what encodeGlobal wrote and returns the state and
// the decoder at the rest of b.
func decodeGlobal(b []byte, dropped func(*Version)) (*State, *decoder) {
	s := NewState()
	s.dropped = dropped
	if len(b) == 0 || b[0] != codecVersion {
		return s, &decoder{err: errCodec}
	}
	d := &decoder{b: b[1:]}
	s.Seq = d.u()
	s.Initialized = d.bool()
	s.SealedREK = d.by()
	s.HSMKeyID = d.s()
	s.RootIdentity = d.s()
	s.DefaultType = d.s()
	s.SealedRootKey = d.by()
	for range d.n() {
		h := &HSMSealing{Name: d.s(), Kind: d.s(), KeyID: d.s(), SealedREK: d.by(), AddedAt: d.t()}
		h.AddedBy = d.actor(s)
		s.HSMs[h.KeyID] = h
	}
	for range d.n() {
		id := d.s()
		s.RemovedHSMs[id] = d.bool()
	}
	return s, d
}

// decodeEnclave adds the enclave encodeEnclave wrote to s.
func decodeEnclave(s *State, b []byte) error {
	d := &decoder{b: b}
	d.enclave(s)
	if d.err == nil && len(d.b) != 0 {
		return errCodec
	}
	return d.err
}

// enclave reads an enclave into s and returns it (nil on an error).
func (d *decoder) enclave(s *State) *Enclave {
	x := &Enclave{Name: d.s(), CreatedAt: d.t(), CreatedBy: d.actor(s), drop: s.dropped}
	n := d.n()
	room := n + n/mapHeadroom
	if d.grow != nil {
		room += d.grow.keys[x.Name]
	}
	x.Keys = make(map[string]*Key, room)
	for i := range n {
		d.refill()
		name := d.s()
		seq := d.u()
		k := d.key(s, x.Name, name, n-i)
		k.seq = seq
		x.Keys[name] = k
		if k.pending != nil {
			x.setPending(name, true)
		}
	}
	n = d.n()
	x.Identities = make(map[string]*Identity, n)
	for range n {
		d.refill()
		id := d.identity(s)
		x.Identities[id.Identity] = id
	}
	n = d.n()
	x.Policies = make(map[string]*Policy, n)
	for range n {
		d.refill()
		p := &Policy{Name: d.s(), Allow: d.rules(), Deny: d.rules(), CreatedAt: d.t()}
		p.CreatedBy = d.actor(s)
		x.Policies[p.Name] = p
	}
	n = d.n()
	x.Tombstones = make(map[string]*Tombstone, n)
	for range n {
		d.refill()
		name := d.s()
		x.Tombstones[name] = &Tombstone{Name: d.s(), DestroyedAt: d.t(), DestroyedBy: d.actor(s), Reason: d.s()}
	}
	d.logins(s, x) // snapshot_transit.go
	if d.err != nil {
		return nil
	}
	s.Enclaves[x.Name] = x
	return x
}

// key reads a key; name is its name, and left counts it
// and the keys of its enclave after it.
func (d *decoder) key(s *State, enclave, name string, left int) *Key {
	if stored := d.raw(); string(stored) != name {
		name = string(stored) // a key whose name is not its map key: keep both as they were
	}
	h := Key{Name: name, CreatedBy: d.actor(s), created: d.i()}
	if d.bool() {
		h.pending = &deletion{deadline: d.t(), by: d.actor(s)}
	}
	h.MaxVer = uint32(d.u())
	h.Disabled = d.bool()
	if t := d.transitSettings(); t != (TransitSettings{}) {
		h.transit = &t
	}
	n := d.n()
	var (
		k     *Key
		first *Version
	)
	if n == 1 {
		k, first = d.newKeyCell(left) // together, as addVersion does
		h.versions = k.versions
	} else {
		k = new(Key)
		if n > 0 {
			h.versions = make([]*Version, 0, n)
		}
	}
	*k = h
	for range n {
		v := first
		if v == nil {
			v = new(Version)
		}
		*v = Version{Version: uint32(d.u()), Imported: d.bool(), Disabled: d.bool(), Type: d.keyType(), CreatedBy: d.actor(s)}
		ref, fp := d.raw(), d.raw()
		v.created = d.i()
		var source *ledger.ImportSource
		if src := d.raw(); len(src) > 0 {
			source = new(ledger.ImportSource)
			if err := json.Unmarshal(src, source); err != nil {
				d.fail("bad import source")
			}
		}
		v.setFacts(enclave, name, viewString(ref), viewString(fp), source)
		if v != first {
			k.versions = append(k.versions, v)
		}
	}
	return k
}

// keyCellChunk is the most keyCells a decoder allocates at once: an
// enclave of a million keys makes 245 allocations of 960 KB instead of a
// million of 240 bytes. A chunk is freed once none of its keys is left,
// so deleted keys keep at most what the start allocated.
const keyCellChunk = 4096

// newKeyCell is the package's newKeyCell, from the decoder's chunk; left
// is the number of keys of the enclave not yet read, this one included,
// so that a small enclave (time travel decodes one at a time) allocates
// no more cells than it has keys.
func (d *decoder) newKeyCell(left int) (*Key, *Version) {
	if len(d.cells) == 0 {
		d.cells = make([]keyCell, min(left, keyCellChunk))
	}
	c := &d.cells[0]
	d.cells = d.cells[1:]
	return c.init()
}

func (d *decoder) identity(s *State) *Identity {
	x := &Identity{Identity: d.s(), Privilege: d.s(), Policy: d.s(), ServiceAccount: d.bool(), Parent: d.s()}
	if d.bool() {
		n := d.n()
		x.Tags = make(map[string]string, n)
		for range n {
			k := d.s()
			x.Tags[k] = d.s()
		}
	} else {
		d.n()
	}
	x.CreatedAt = d.t()
	x.CreatedBy = d.actor(s)
	return x
}

func (d *decoder) rules() map[string][]string {
	if !d.bool() {
		d.n()
		return nil
	}
	n := d.n()
	r := make(map[string][]string, n)
	for range n {
		k := d.s()
		isSet := d.bool()
		m := d.n()
		var xs []string
		if isSet {
			xs = make([]string, 0, m)
		}
		for range m {
			xs = append(xs, d.s())
		}
		r[k] = xs
	}
	return r
}

// actor reads an identity, interned in s without allocating when s
// already holds it.
func (d *decoder) actor(s *State) string {
	b := d.raw()
	if x, ok := s.actors[string(b)]; ok {
		return x
	}
	return s.intern(string(b))
}

// keyType reads a key type, sharing the constant strings.
func (d *decoder) keyType() string {
	switch b := d.raw(); string(b) {
	case "AES256":
		return "AES256"
	case "ChaCha20":
		return "ChaCha20"
	default:
		return string(b)
	}
}
