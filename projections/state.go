package projections

import (
	"sort"
	"sync/atomic"
	"time"

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
	// AppRoles and Tokens are the Transit API's logins (auth.go); nil
	// until the first event. Their values are replaced, never changed.
	AppRoles map[string]*AppRole // by role name
	Tokens   map[string]*Token   // by token hash (hex SHA-256)

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
	// Transit holds the key's Transit API settings (key.transit_configured.v1).
	Transit TransitSettings
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
