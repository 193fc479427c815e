package commands

import (
	"errors"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// Errors of Decide. The api package maps each to its wire status.
// ErrEnclaveNotFound and ErrKeyNotFound are the projections' own sentinels:
// a name that does not exist is one error, whichever layer finds it.
var (
	ErrEnclaveExists    = errors.New("commands: enclave already exists")
	ErrEnclaveNotFound  = projections.ErrEnclaveNotFound
	ErrKeyExists        = errors.New("commands: key already exists")
	ErrKeyNotFound      = projections.ErrKeyNotFound
	ErrIdentityNotFound = errors.New("commands: identity does not exist")
	ErrPolicyNotFound   = errors.New("commands: policy does not exist")
	ErrInvalidName      = newClientError("invalid name")
	ErrInvalidArgument  = newClientError("invalid argument")
	ErrNotInitialized   = errors.New("commands: ledger is not initialized")
	// ErrKeyTombstoned: the name belonged to a destroyed key and stays
	// reserved until an admin releases it.
	ErrKeyTombstoned = errors.New("commands: key name belongs to a destroyed key")
	// ErrNotPending: restore of a key that is not pending deletion, or a
	// scheduled destruction before its deadline.
	ErrNotPending = errors.New("commands: key is not pending deletion")
	// ErrUnchanged: an import of material the key already holds.
	ErrUnchanged = errors.New("commands: key exists with the same material")
	// ErrSkipped: an import skipped because the key holds other material.
	ErrSkipped = errors.New("commands: key exists with other material: skipped")
)

// Command is one of the command types below.
type Command interface {
	// scope is the enclave the command writes to ("" for system scope);
	// commands of one scope are decided one at a time on a node.
	scope() string
}

// CreateEnclave creates an enclave.
type CreateEnclave struct{ Name string }

// DeleteEnclave deletes an enclave and everything in it, and erases its
// sealed key material.
type DeleteEnclave struct{ Name string }

// CreateKey creates a key with fresh material, or adds a version to an
// existing key when AddVersion is set. Type "" means the server default.
type CreateKey struct {
	Enclave, Name, Type string
	AddVersion          bool
}

// ImportKey creates a key (or, with AddVersion, a new version) from
// material supplied by the caller. Source records provenance; HMACKey is
// a migrated key's own HMAC key (KES), kept so MACs stay the same.
//
// OnConflict says what to do when the key exists (ignored with
// AddVersion): with the same material the import is a no-op
// (ErrUnchanged) whatever it says; with other material ConflictAbort
// fails with ErrKeyExists, ConflictSkip fails with ErrSkipped and
// ConflictReplace adds the material as the key's new latest version,
// recorded with Source.Replaced (older versions stay, so their
// ciphertexts still decrypt, until deleted).
type ImportKey struct {
	Enclave, Name, Type string
	Material, HMACKey   []byte
	AddVersion          bool
	Source              *ledger.ImportSource
	OnConflict          Conflict
}

// Conflict is the policy of an import whose key exists with other
// material.
type Conflict int

// Conflict policies.
const (
	ConflictAbort Conflict = iota
	ConflictSkip
	ConflictReplace
)

// DeleteKey destroys one version (0 = the latest) or, with All, every
// version of a key.
type DeleteKey struct {
	Enclave, Name string
	Version       uint32
	All           bool
}

// CreateIdentity creates or overwrites an identity of an enclave.
type CreateIdentity struct {
	Enclave, Identity, Privilege string
	ServiceAccount               bool
	Tags                         map[string]string
}

// DeleteIdentity deletes an identity and its service accounts.
type DeleteIdentity struct{ Enclave, Identity string }

// CreatePolicy creates or overwrites a policy.
type CreatePolicy struct {
	Enclave, Name string
	Allow, Deny   map[string][]string
}

// DeletePolicy deletes a policy.
type DeletePolicy struct{ Enclave, Name string }

// AssignPolicy assigns an existing policy to an existing identity.
type AssignPolicy struct{ Enclave, Identity, Policy string }

// DisableKey disables a key (Version 0) or one version: crypto requests
// fail until it is enabled again.
type DisableKey struct {
	Enclave, Name string
	Version       uint32
}

// EnableKey reverses DisableKey.
type EnableKey struct {
	Enclave, Name string
	Version       uint32
}

// ScheduleKeyDeletion marks a key pending deletion until Deadline.
type ScheduleKeyDeletion struct {
	Enclave, Name string
	Deadline      time.Time
}

// RestoreKey cancels a scheduled deletion.
type RestoreKey struct{ Enclave, Name string }

// DestroyScheduledKey carries out a scheduled deletion whose deadline has
// passed (Env.Now is after it).
type DestroyScheduledKey struct{ Enclave, Name string }

// ReleaseKeyName lifts the tombstone of a destroyed key.
type ReleaseKeyName struct{ Enclave, Name string }

// ConfigureTransitKey sets the Transit settings of an existing key, as a
// whole. Derived can only be chosen by a key's first configuration (the
// Transit API sends it in the batch that creates the key); the minimum
// versions must name versions the key has had, and a non-zero minimum
// encryption version may not be below the minimum decryption version.
type ConfigureTransitKey struct {
	Enclave, Name                              string
	Derived, DeletionAllowed                   bool
	MinDecryptionVersion, MinEncryptionVersion uint32
}

func (c DisableKey) scope() string          { return c.Enclave }
func (c EnableKey) scope() string           { return c.Enclave }
func (c ScheduleKeyDeletion) scope() string { return c.Enclave }
func (c RestoreKey) scope() string          { return c.Enclave }
func (c DestroyScheduledKey) scope() string { return c.Enclave }
func (c ReleaseKeyName) scope() string      { return c.Enclave }
func (c ConfigureTransitKey) scope() string { return c.Enclave }
func (c SetAppRole) scope() string          { return c.Enclave }
func (c AddAppRoleSecretID) scope() string  { return c.Enclave }
func (c DeleteAppRole) scope() string       { return c.Enclave }
func (c IssueToken) scope() string          { return c.Enclave }
func (c RenewToken) scope() string          { return c.Enclave }
func (c RevokeToken) scope() string         { return c.Enclave }
func (c CreateEnclave) scope() string       { return c.Name }
func (c DeleteEnclave) scope() string       { return c.Name }
func (c CreateKey) scope() string           { return c.Enclave }
func (c ImportKey) scope() string           { return c.Enclave }
func (c DeleteKey) scope() string           { return c.Enclave }
func (c CreateIdentity) scope() string      { return c.Enclave }
func (c DeleteIdentity) scope() string      { return c.Enclave }
func (c CreatePolicy) scope() string        { return c.Enclave }
func (c DeletePolicy) scope() string        { return c.Enclave }
func (c AssignPolicy) scope() string        { return c.Enclave }
