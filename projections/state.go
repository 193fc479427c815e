package projections

import (
	"sync/atomic"
	"time"
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

	// subjects holds the last sequence of every subject ever written but
	// those of live keys, which their Key holds (LastSeq, subjects.go), so
	// that writers can append with optimistic concurrency even for
	// aggregates that were deleted.
	subjects map[string]uint64
	// subjectsShared is set on a fork until it copies subjects before its
	// first change (fork.go).
	subjectsShared bool
	// past is set on a state of time travel, which records no subject's
	// sequence (forgetSubjects).
	past bool

	owned map[string]bool // enclaves a Fork has copied; nil if not a fork (fork.go)

	// actors interns the identities that events name as their actor, so
	// that a million keys created by one identity share one string; nil
	// in a fork (key.go).
	actors map[string]string
	// deltaBase is the full snapshot the changes recorded are since, when
	// the state was read from a snapshot file (readSnapshot); nil
	// otherwise (the snapshot writer keeps its own).
	deltaBase *snapBase
	// dropped is called with every key version removed from the state
	// (destroyed, or its enclave deleted), so that the Projection can
	// forget its unsealed material; nil if nobody cares.
	dropped func(*Version)
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
	drop                                 func(*Version)                      // State.dropped; nil in a fork
	pending                              map[string]struct{}                 // keys (of Keys) pending deletion; nil: none
	// partial: only the keys named in changed (which may be gone) were
	// changed since the last full snapshot; else any key may have been
	// (the enclave is new, or nothing is recorded). snapshot_delta.go.
	partial bool
	changed map[string]struct{}
}

// Tombstone records a destroyed key whose name is reserved.
type Tombstone struct {
	Name        string
	DestroyedAt time.Time
	DestroyedBy string
	Reason      string
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
	return &State{Enclaves: map[string]*Enclave{}, subjects: map[string]uint64{}, HSMs: map[string]*HSMSealing{}, RemovedHSMs: map[string]bool{},
		actors: map[string]string{}}
}
