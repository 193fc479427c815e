package projections

import (
	"encoding/json"

	"github.com/kmsledger/kmsledger/ledger"
)

// decodeState reads a state written by encodeState. dropped is the new
// state's State.dropped (nil if nobody cares).
func decodeState(b []byte, dropped func(*Version)) (*State, error) {
	s, d := decodeGlobal(b, dropped)
	for range d.n() {
		d.enclave(s)
	}
	for range d.n() {
		subj := d.s()
		s.Subjects[subj] = d.u()
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, errCodec
	}
	return s, nil
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

func (d *decoder) enclave(s *State) {
	x := &Enclave{Name: d.s(), CreatedAt: d.t(), CreatedBy: d.actor(s), drop: s.dropped}
	n := d.n()
	x.Keys = make(map[string]*Key, n)
	prefix := ledger.KeySubject(x.Name, "")
	for range n {
		name := d.s()
		if seq := d.u(); seq != 0 {
			subj := prefix + name
			name = subj[len(prefix):]
			s.Subjects[subj] = seq
		}
		x.Keys[name] = d.key(s, name)
	}
	n = d.n()
	x.Identities = make(map[string]*Identity, n)
	for range n {
		id := d.identity(s)
		x.Identities[id.Identity] = id
	}
	n = d.n()
	x.Policies = make(map[string]*Policy, n)
	for range n {
		p := &Policy{Name: d.s(), Allow: d.rules(), Deny: d.rules(), CreatedAt: d.t()}
		p.CreatedBy = d.actor(s)
		x.Policies[p.Name] = p
	}
	n = d.n()
	x.Tombstones = make(map[string]*Tombstone, n)
	for range n {
		name := d.s()
		x.Tombstones[name] = &Tombstone{Name: d.s(), DestroyedAt: d.t(), DestroyedBy: d.actor(s), Reason: d.s()}
	}
	d.logins(s, x) // snapshot_transit.go
	if d.err == nil {
		s.Enclaves[x.Name] = x
	}
}

// key reads a key; name is its (subject-sharing) name.
func (d *decoder) key(s *State, name string) *Key {
	if stored := d.s(); stored != name {
		name = stored // a key whose name is not its map key: keep both as they were
	}
	h := Key{Name: name, CreatedBy: d.actor(s), created: d.i()}
	if d.bool() {
		h.pending = &deletion{deadline: d.t(), by: d.actor(s)}
	}
	h.MaxVer = uint32(d.u())
	h.Disabled = d.bool()
	h.Transit = d.transitSettings()
	n := d.n()
	var (
		k     *Key
		first *Version
	)
	if n == 1 {
		k, first = newKeyCell() // allocated together, as addVersion does
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
		*v = Version{Version: uint32(d.u()), Imported: d.bool(), Disabled: d.bool(), Type: d.keyType(),
			CreatedBy: d.actor(s), SecretRef: d.s(), Fingerprint: d.s(), created: d.i()}
		if src := d.raw(); len(src) > 0 {
			v.Source = new(ledger.ImportSource)
			if err := json.Unmarshal(src, v.Source); err != nil {
				d.fail("bad import source")
			}
		}
		if v != first {
			k.versions = append(k.versions, v)
		}
	}
	return k
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
