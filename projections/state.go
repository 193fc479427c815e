package projections

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
)

// State is the in-memory projection of the LEDGER: enclaves with their
// keys, identities and policies. It is plain data, changed only by Apply.
// Readers must hold the Projection's read lock (see Projection.View).
type State struct {
	Seq          uint64 // last applied stream sequence
	Initialized  bool
	SealedREK    []byte
	HSMKeyID     string
	RootIdentity string
	DefaultType  string
	// SealedRootKey is the root API key sealed under the REK, when it is
	// not derived from a software HSM key.
	SealedRootKey []byte
	Enclaves      map[string]*Enclave
	// HSMs holds every live sealing of the REK, by HSM key id.
	HSMs map[string]*HSMSealing
	// RemovedHSMs holds the key ids of the HSMs whose sealing was removed
	// (rm-hsm) and not added again since: they are not sealed again
	// automatically at start.
	RemovedHSMs map[string]bool

	// Subjects holds the last sequence of every subject ever written, so
	// that writers can append with optimistic concurrency even for
	// aggregates that were deleted.
	Subjects map[string]uint64

	owned map[string]bool // enclaves a Fork has copied; nil if not a fork (fork.go)
}

// HSMSealing is the REK sealed under one HSM.
type HSMSealing struct {
	Name, Kind, KeyID string
	SealedREK         []byte
	AddedAt           time.Time
	AddedBy           string
}

// Enclave is one enclave and everything in it.
type Enclave struct {
	Name       string
	CreatedAt  time.Time
	CreatedBy  string
	Keys       map[string]*Key
	Identities map[string]*Identity
	Policies   map[string]*Policy
	Tombstones map[string]*Tombstone // destroyed key names, reserved until released

	keyIndex, identityIndex, policyIndex nameIndex                           // sorted names, for list pages (index.go)
	saIndex                              atomic.Pointer[map[string][]string] // parent -> service accounts (index.go)
}

// Tombstone records a destroyed key whose name is reserved.
type Tombstone struct {
	Name        string
	DestroyedAt time.Time
	DestroyedBy string
	Reason      string
}

// Key is a named key and its versions.
type Key struct {
	Name      string
	CreatedAt time.Time
	CreatedBy string
	Versions  map[uint32]*Version // live versions only
	MaxVer    uint32              // highest version ever created; versions are never reused
	Disabled  bool                // the whole key is disabled
	// DeletionDeadline is set while the key is pending deletion: it is
	// unusable, restorable until then, and destroyed after it.
	DeletionDeadline time.Time
	ScheduledBy      string
}

// Usable reports why version v of k cannot be used for crypto, or nil.
func (k *Key) Usable(v *Version) error {
	switch {
	case !k.DeletionDeadline.IsZero():
		return ErrKeyPendingDeletion
	case k.Disabled || v.Disabled:
		return ErrKeyDisabled
	}
	return nil
}

// Latest returns the newest live version, or nil if none is left.
func (k *Key) Latest() *Version {
	var v *Version
	for _, x := range k.Versions {
		if v == nil || x.Version > v.Version {
			v = x
		}
	}
	return v
}

// SortedVersions returns the live versions, oldest first.
func (k *Key) SortedVersions() []*Version {
	vs := make([]*Version, 0, len(k.Versions))
	for _, v := range k.Versions {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].Version < vs[j].Version })
	return vs
}

// Version is one key version. Its material is sealed in SECRETS under
// SecretRef; the Projection unseals it on first use.
type Version struct {
	Version     uint32
	Type        string
	CreatedAt   time.Time
	CreatedBy   string
	SecretRef   string
	Fingerprint string
	Imported    bool
	Source      *ledger.ImportSource
	Disabled    bool

	// LastUsed is the Unix time (ns) this version last served a crypto
	// request on this node since start; 0 = not since start.
	LastUsed atomic.Int64 `json:"-"`

	unsealed unsealedKey
}

// Identity is an enclave identity (not the root identity).
type Identity struct {
	Identity       string
	Privilege      string
	Policy         string
	ServiceAccount bool
	Parent         string
	Tags           map[string]string
	CreatedAt      time.Time
	CreatedBy      string
}

// Policy is a named set of allow and deny rules.
type Policy struct {
	Name      string
	Allow     map[string][]string
	Deny      map[string][]string
	CreatedAt time.Time
	CreatedBy string
}

// NewState returns an empty state.
func NewState() *State {
	return &State{Enclaves: map[string]*Enclave{}, Subjects: map[string]uint64{}, HSMs: map[string]*HSMSealing{}, RemovedHSMs: map[string]bool{}}
}

// Apply folds one event into the state. Unknown event types are an error:
// a reader older than the ledger must not silently drop facts.
func (s *State) Apply(ev ledger.Event) error {
	if ev.Seq != 0 {
		s.Seq = ev.Seq
		s.Subjects[ev.Aggregate] = ev.Seq
	}
	s.own(ev.Enclave)
	e := s.Enclaves[ev.Enclave]
	switch ev.Type {
	case ledger.TypeSigningKey, ledger.TypeCheckpoint: // audit trail only (ledger/checkpoint.go)
	case ledger.TypeSystemInitialized:
		var p ledger.SystemInitialized
		if err := decode(ev, &p); err != nil {
			return err
		}
		s.Initialized, s.SealedREK, s.HSMKeyID = true, p.SealedREK, p.HSMKeyID
		s.RootIdentity, s.DefaultType, s.SealedRootKey = p.RootIdentity, p.DefaultType, p.SealedRootKey
		s.HSMs[p.HSMKeyID] = &HSMSealing{Name: p.HSMName, Kind: p.HSMKind, KeyID: p.HSMKeyID, SealedREK: p.SealedREK, AddedAt: ev.Time, AddedBy: ev.Actor}
	case ledger.TypeHSMAdded:
		var p ledger.HSMAdded
		if err := decode(ev, &p); err != nil {
			return err
		}
		s.HSMs[p.KeyID] = &HSMSealing{Name: p.Name, Kind: p.Kind, KeyID: p.KeyID, SealedREK: p.SealedREK, AddedAt: ev.Time, AddedBy: ev.Actor}
		delete(s.RemovedHSMs, p.KeyID)
	case ledger.TypeHSMRemoved:
		var p ledger.HSMRemoved
		if err := decode(ev, &p); err != nil {
			return err
		}
		delete(s.HSMs, p.KeyID)
		s.RemovedHSMs[p.KeyID] = true
	case ledger.TypeEnclaveCreated:
		var p ledger.EnclaveCreated
		if err := decode(ev, &p); err != nil {
			return err
		}
		s.Enclaves[p.Name] = &Enclave{
			Name: p.Name, CreatedAt: ev.Time, CreatedBy: ev.Actor,
			Keys: map[string]*Key{}, Identities: map[string]*Identity{}, Policies: map[string]*Policy{},
			Tombstones: map[string]*Tombstone{},
		}
	case ledger.TypeEnclaveDeleted:
		var p ledger.EnclaveDeleted
		if err := decode(ev, &p); err != nil {
			return err
		}
		delete(s.Enclaves, p.Name)
	default:
		if e == nil {
			return fmt.Errorf("projections: %s at seq %d: enclave %q does not exist", ev.Type, ev.Seq, ev.Enclave)
		}
		return e.apply(ev)
	}
	return nil
}

func (e *Enclave) apply(ev ledger.Event) error {
	e.resetIndexes()
	switch ev.Type {
	case ledger.TypeKeyCreated, ledger.TypeKeyImported:
		var p ledger.KeyVersionCreated
		if err := decode(ev, &p); err != nil {
			return err
		}
		k := e.Keys[p.Name]
		if k == nil {
			k = &Key{Name: p.Name, CreatedAt: ev.Time, CreatedBy: ev.Actor, Versions: map[uint32]*Version{}}
			e.Keys[p.Name] = k
		}
		k.Versions[p.Version] = &Version{
			Version: p.Version, Type: p.Type, CreatedAt: ev.Time, CreatedBy: ev.Actor,
			SecretRef: p.SecretRef, Fingerprint: p.Fingerprint,
			Imported: ev.Type == ledger.TypeKeyImported, Source: p.Source,
		}
		k.MaxVer = max(k.MaxVer, p.Version)
	case ledger.TypeKeyVersionDeleted:
		var p ledger.KeyVersionDeleted
		if err := decode(ev, &p); err != nil {
			return err
		}
		if k := e.Keys[p.Name]; k != nil {
			delete(k.Versions, p.Version)
			if len(k.Versions) == 0 {
				delete(e.Keys, p.Name)
				e.Tombstones[p.Name] = &Tombstone{Name: p.Name, DestroyedAt: ev.Time, DestroyedBy: ev.Actor}
			}
		}
	case ledger.TypeKeyDeleted:
		var p ledger.KeyDeleted
		if err := decode(ev, &p); err != nil {
			return err
		}
		delete(e.Keys, p.Name)
		e.Tombstones[p.Name] = &Tombstone{Name: p.Name, DestroyedAt: ev.Time, DestroyedBy: ev.Actor, Reason: p.Reason}
	case ledger.TypeKeyDisabled, ledger.TypeKeyEnabled:
		var p ledger.KeyStateChanged
		if err := decode(ev, &p); err != nil {
			return err
		}
		k := e.Keys[p.Name]
		if k == nil {
			return fmt.Errorf("projections: %s at seq %d: no key %q", ev.Type, ev.Seq, p.Name)
		}
		disabled := ev.Type == ledger.TypeKeyDisabled
		if p.Version == 0 {
			k.Disabled = disabled
		} else if v := k.Versions[p.Version]; v != nil {
			v.Disabled = disabled
		}
	case ledger.TypeKeyDeletionScheduled:
		var p ledger.KeyDeletionScheduled
		if err := decode(ev, &p); err != nil {
			return err
		}
		if k := e.Keys[p.Name]; k != nil {
			k.DeletionDeadline, k.ScheduledBy = p.Deadline, ev.Actor
		}
	case ledger.TypeKeyRestored:
		var p ledger.KeyRestored
		if err := decode(ev, &p); err != nil {
			return err
		}
		if k := e.Keys[p.Name]; k != nil {
			k.DeletionDeadline, k.ScheduledBy = time.Time{}, ""
		}
	case ledger.TypeKeyNameReleased:
		var p ledger.KeyNameReleased
		if err := decode(ev, &p); err != nil {
			return err
		}
		delete(e.Tombstones, p.Name)
	case ledger.TypeIdentityCreated:
		var p ledger.IdentityCreated
		if err := decode(ev, &p); err != nil {
			return err
		}
		policy := ""
		if old := e.Identities[p.Identity]; old != nil {
			policy = old.Policy
		}
		e.Identities[p.Identity] = &Identity{
			Identity: p.Identity, Privilege: p.Privilege, Policy: policy,
			ServiceAccount: p.ServiceAccount, Parent: p.Parent, Tags: p.Tags,
			CreatedAt: ev.Time, CreatedBy: ev.Actor,
		}
	case ledger.TypeIdentityDeleted:
		var p ledger.IdentityDeleted
		if err := decode(ev, &p); err != nil {
			return err
		}
		delete(e.Identities, p.Identity)
		for _, sa := range p.ServiceAccounts {
			delete(e.Identities, sa)
		}
	case ledger.TypePolicyAssigned:
		var p ledger.PolicyAssigned
		if err := decode(ev, &p); err != nil {
			return err
		}
		if id := e.Identities[p.Identity]; id != nil {
			id.Policy = p.Policy
		}
	case ledger.TypePolicyCreated:
		var p ledger.PolicyCreated
		if err := decode(ev, &p); err != nil {
			return err
		}
		// Policies written before command names were checked may hold
		// names in another case ("key:decrypt"): they are enforced by
		// their canonical name; unknown names are kept and match nothing.
		e.Policies[p.Name] = &Policy{Name: p.Name, Allow: wire.CanonicalRules(p.Allow), Deny: wire.CanonicalRules(p.Deny),
			CreatedAt: ev.Time, CreatedBy: ev.Actor}
	case ledger.TypePolicyDeleted:
		var p ledger.PolicyDeleted
		if err := decode(ev, &p); err != nil {
			return err
		}
		delete(e.Policies, p.Name)
	default:
		return fmt.Errorf("projections: unknown event type %q at seq %d", ev.Type, ev.Seq)
	}
	return nil
}

func decode(ev ledger.Event, v any) error {
	if err := json.Unmarshal(ev.Payload, v); err != nil {
		return fmt.Errorf("projections: decode %s at seq %d: %w", ev.Type, ev.Seq, err)
	}
	return nil
}
