package projections

import (
	"maps"
	"slices"
	"time"
)

// The snapshot codec's part for the Transit API's state: a key's Transit
// settings and an enclave's AppRoles and Tokens (auth.go).

func (e *encoder) transitSettings(t TransitSettings) {
	e.bool(t.Configured)
	e.bool(t.Derived)
	e.bool(t.DeletionAllowed)
	e.u(uint64(t.MinDecryptionVersion))
	e.u(uint64(t.MinEncryptionVersion))
}

func (d *decoder) transitSettings() TransitSettings {
	return TransitSettings{Configured: d.bool(), Derived: d.bool(), DeletionAllowed: d.bool(),
		MinDecryptionVersion: uint32(d.u()), MinEncryptionVersion: uint32(d.u())}
}

// logins writes x's AppRoles and Tokens (each nil until its first event).
func (e *encoder) logins(x *Enclave) {
	e.bool(x.AppRoles != nil)
	e.u(uint64(len(x.AppRoles)))
	for _, name := range slices.Sorted(maps.Keys(x.AppRoles)) {
		r := x.AppRoles[name]
		e.mark()
		e.s(r.Role)
		e.s(r.RoleID)
		e.s(r.Identity)
		e.i(int64(r.TokenTTL))
		e.bool(r.SecretIDs != nil)
		e.u(uint64(len(r.SecretIDs)))
		for _, h := range slices.Sorted(maps.Keys(r.SecretIDs)) {
			e.s(h)
			e.s(r.SecretIDs[h])
		}
		e.t(r.CreatedAt)
		e.s(r.CreatedBy)
	}
	e.bool(x.Tokens != nil)
	e.u(uint64(len(x.Tokens)))
	for _, h := range slices.Sorted(maps.Keys(x.Tokens)) {
		t := x.Tokens[h]
		e.mark()
		e.s(t.Accessor)
		e.s(t.Hash)
		e.s(t.Identity)
		e.s(t.Path)
		e.s(t.Role)
		e.i(int64(t.TTL))
		e.t(t.IssuedAt)
		e.t(t.ExpiresAt)
	}
}

// logins reads what encoder.logins wrote into x.
func (d *decoder) logins(s *State, x *Enclave) {
	isSet, n := d.bool(), d.n()
	if isSet {
		x.AppRoles = make(map[string]*AppRole, n)
	}
	for range n {
		d.refill()
		r := &AppRole{Role: d.s(), RoleID: d.s(), Identity: d.s(), TokenTTL: time.Duration(d.i())}
		idsSet, m := d.bool(), d.n()
		if idsSet {
			r.SecretIDs = make(map[string]string, m)
		}
		for range m {
			h := d.s()
			r.SecretIDs[h] = d.s()
		}
		r.CreatedAt = d.t()
		r.CreatedBy = d.actor(s)
		if x.AppRoles == nil || (!idsSet && m > 0) {
			d.fail("bad AppRole")
			return
		}
		x.AppRoles[r.Role] = r
	}
	isSet, n = d.bool(), d.n()
	if isSet {
		x.Tokens = make(map[string]*Token, n)
	}
	for range n {
		d.refill()
		t := &Token{Accessor: d.s(), Hash: d.s(), Identity: d.s(), Path: d.s(), Role: d.s(),
			TTL: time.Duration(d.i()), IssuedAt: d.t(), ExpiresAt: d.t()}
		if x.Tokens == nil {
			d.fail("bad token")
			return
		}
		x.Tokens[t.Hash] = t
	}
}
