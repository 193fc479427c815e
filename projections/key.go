package projections

import (
	"iter"
	"slices"
	"sync/atomic"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
)

// The projection holds every key of every enclave in memory, so a Key and
// its Versions are kept small (BENCHMARKS.md, "A million keys"): the
// versions are a short sorted slice (most keys have one), times are Unix
// nanoseconds, the rarely set deletion schedule is behind a pointer, the
// actor and the type are interned, the rare Transit settings are behind a
// pointer, and the last sequence of the key's subject is in the Key rather
// than in a map of a million subject strings (subjects.go). Unsealed
// material is not here: the Projection keeps a bounded cache of it
// (cache.go).

// Key is a named key and its versions.
type Key struct {
	Name      string
	CreatedBy string
	versions  []*Version // live versions only, oldest first
	created   int64      // Unix ns; 0 = zero time
	pending   *deletion  // set while the key is pending deletion
	seq       uint64     // the last sequence of the key's ledger subject (State.LastSeq); 0 = none
	transit   *TransitSettings
	MaxVer    uint32 // highest version ever created; versions are never reused
	Disabled  bool   // the whole key is disabled
}

// Transit returns the key's Transit API settings
// (key.transit_configured.v1); the zero value if never configured. Few
// keys have them, so a Key holds a pointer (a million keys' records then
// stay in one size class with the subject's sequence).
func (k *Key) Transit() TransitSettings {
	if k.transit == nil {
		return TransitSettings{}
	}
	return *k.transit
}

// TransitSettings are a key's options of the Vault Transit API
// (ledger.KeyTransitConfigured); the zero value is a key never configured
// over Transit: not derived, not deletable over Transit, every version
// decrypts.
type TransitSettings struct {
	Configured           bool // a key.transit_configured.v1 event was applied
	Derived              bool
	DeletionAllowed      bool
	MinDecryptionVersion uint32
	MinEncryptionVersion uint32
}

// deletion is the schedule of a key pending deletion.
type deletion struct {
	deadline time.Time
	by       string
}

// keyCell is a Key allocated with the backing array of its versions and
// its first Version: most keys have one version, and a lookup then reads
// one block of memory instead of three (BENCHMARKS.md, "Memory and the
// key cache"). A version added later is allocated on its own.
type keyCell struct {
	key Key
	vs  [1]*Version
	v   Version
}

// newKeyCell returns a Key whose only version is v, both zero but for the
// versions slice: the caller fills them in without replacing it.
func newKeyCell() (*Key, *Version) { return new(keyCell).init() }

// init links c's Key to its Version (newKeyCell) and returns both.
func (c *keyCell) init() (*Key, *Version) {
	c.vs[0] = &c.v
	c.key.versions = c.vs[:]
	return &c.key, &c.v
}

// CreatedAt is when the key's first version was created.
func (k *Key) CreatedAt() time.Time { return fromUnixNano(k.created) }

// DeletionDeadline is the zero time unless the key is pending deletion: it
// is then unusable, restorable until the deadline, and destroyed after it.
func (k *Key) DeletionDeadline() time.Time {
	if k.pending == nil {
		return time.Time{}
	}
	return k.pending.deadline
}

// ScheduledBy is the identity that scheduled the key's deletion, or "".
func (k *Key) ScheduledBy() string {
	if k.pending == nil {
		return ""
	}
	return k.pending.by
}

// PendingDeletion yields the keys of e pending deletion, in no particular
// order. It reads an index kept as events are applied, so it costs the
// pending keys, not all of them (the scheduler asks every interval).
func (e *Enclave) PendingDeletion() iter.Seq[*Key] {
	return func(yield func(*Key) bool) {
		for name := range e.pending {
			if k := e.Keys[name]; k != nil && k.pending != nil && !yield(k) {
				return
			}
		}
	}
}

// setPending records whether the key e.Keys[name] is pending deletion;
// an index without keys is nil, as in a decoded snapshot.
func (e *Enclave) setPending(name string, on bool) {
	switch {
	case on && e.pending == nil:
		e.pending = map[string]struct{}{name: {}}
	case on:
		e.pending[name] = struct{}{}
	default:
		delete(e.pending, name)
		if len(e.pending) == 0 {
			e.pending = nil
		}
	}
}

// Usable reports why version v of k cannot be used for crypto, or nil.
func (k *Key) Usable(v *Version) error {
	switch {
	case k.pending != nil:
		return ErrKeyPendingDeletion
	case k.Disabled || v.Disabled:
		return ErrKeyDisabled
	}
	return nil
}

// Latest returns the newest live version, or nil if none is left.
func (k *Key) Latest() *Version {
	if len(k.versions) == 0 {
		return nil
	}
	return k.versions[len(k.versions)-1]
}

// Version returns live version n, or nil.
func (k *Key) Version(n uint32) *Version {
	i, ok := slices.BinarySearchFunc(k.versions, n, func(v *Version, n uint32) int { return compareU32(v.Version, n) })
	if !ok {
		return nil
	}
	return k.versions[i]
}

// Versions returns the live versions, oldest first. The slice is shared
// with the state: do not change it.
func (k *Key) Versions() []*Version { return k.versions }

// SortedVersions returns a copy of the live versions, oldest first.
func (k *Key) SortedVersions() []*Version { return slices.Clone(k.versions) }

// putVersion adds or replaces version v, keeping the order.
func (k *Key) putVersion(v *Version) {
	i, ok := slices.BinarySearchFunc(k.versions, v.Version, func(x *Version, n uint32) int { return compareU32(x.Version, n) })
	if ok {
		k.versions[i] = v
		return
	}
	k.versions = slices.Insert(k.versions, i, v)
}

// removeVersion removes version n and returns it, or nil.
func (k *Key) removeVersion(n uint32) *Version {
	i, ok := slices.BinarySearchFunc(k.versions, n, func(x *Version, n uint32) int { return compareU32(x.Version, n) })
	if !ok {
		return nil
	}
	v := k.versions[i]
	k.versions = slices.Delete(k.versions, i, i+1)
	if len(k.versions) == 0 {
		k.versions = nil
	}
	return v
}

func compareU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Version is one key version. Its material is sealed in SECRETS under its
// secret reference; the Projection unseals it on use and keeps it in a
// bounded cache.
//
// A million versions live in memory, so the two digests every version
// records are kept as bytes when they have their usual form: the
// fingerprint (64 lowercase hex digits) and the attempt that ends the
// secret reference (ledger.AttemptSecretRef with ledger.AttemptOf's
// 11-character attempt or a 32-digit lowercase hex one, or the older
// ledger.SecretRef). Their accessors give back the
// recorded strings byte for byte; any other form is kept as recorded, with
// the import source, in the rarely set rare.
type Version struct {
	Version   uint32
	Imported  bool
	Disabled  bool
	form      uint8 // which of fp and attempt hold the recorded strings
	Type      string
	CreatedBy string
	created   int64 // Unix ns; 0 = zero time

	fp      [32]byte // the fingerprint, when form&packedFP
	attempt [16]byte // the secret reference's attempt, when form&(packedAttempt|packedShort)
	rare    *versionRare

	// LastUsed is the Unix time (ns) this version last served a crypto
	// request on this node since start; 0 = not since start.
	LastUsed atomic.Int64 `json:"-"`

	// slot is the index + 1 of the key cache slot that holds this
	// version's unsealed material (0 = none), ORed with the cache's
	// reference bit (cache.go).
	slot atomic.Uint32
	key  atomic.Pointer[hsm.Key]   // the unsealed key while it is in the key cache
	used atomic.Pointer[hsm.Usage] // the uses of unsealed keys that left the cache; nil: none (usage.go)
}

// CreatedAt is when the version was created or imported.
func (v *Version) CreatedAt() time.Time { return fromUnixNano(v.created) }

// copyVersion returns a copy of v's facts, for a fork: no use, no cache.
func copyVersion(v *Version) *Version {
	return &Version{Version: v.Version, Imported: v.Imported, Disabled: v.Disabled, Type: v.Type, CreatedBy: v.CreatedBy,
		created: v.created, form: v.form, fp: v.fp, attempt: v.attempt, rare: v.rare}
}

// unixNano is t in Unix ns, 0 for the zero time. Event times are decided
// by the node's clock, well inside the range of int64 nanoseconds.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano undoes unixNano; times come back in UTC, as events record
// them.
func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// keyType interns the key types this version writes.
func keyType(t string) string {
	switch t {
	case "AES256":
		return "AES256"
	case "ChaCha20":
		return "ChaCha20"
	}
	return t
}

// intern returns the copy of actor the state already holds, if any.
func (s *State) intern(actor string) string {
	if s.actors == nil {
		return actor
	}
	if x, ok := s.actors[actor]; ok {
		return x
	}
	s.actors[actor] = actor
	return actor
}
