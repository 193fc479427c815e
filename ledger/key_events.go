package ledger

import "time"

// Event types of the key aggregate (subject KeySubject(enclave, name)).
const (
	TypeKeyCreated        = "key.created.v1"         // first version of a new key, or an added version
	TypeKeyImported       = "key.imported.v1"        // a version with material supplied by the caller
	TypeKeyVersionDeleted = "key.version_deleted.v1" // one version destroyed
	TypeKeyDeleted        = "key.deleted.v1"         // every version destroyed
)

// KeyCreated is the payload of key.created.v1: a new version (the first
// one of a new key, or one more). The material itself lives sealed in
// SECRETS under SecretRef; the event carries only a reference and a
// fingerprint (a commitment that does not reveal the material).
type KeyCreated struct {
	Name        string `json:"name"`
	Version     uint32 `json:"version"`
	Type        string `json:"type"` // "AES256" or "ChaCha20"
	SecretRef   string `json:"secret_ref"`
	Fingerprint string `json:"fingerprint"`

	// Source describes where imported material came from (key.imported.v1
	// only); empty for the kms API's ImportKey.
	Source *ImportSource `json:"source,omitempty"`
}

// KeyImported is the payload of key.imported.v1: a version whose material
// the caller supplied. It has the fields of KeyCreated; Source says where
// the material came from.
type KeyImported = KeyCreated

// ImportSource is the provenance of imported key material.
type ImportSource struct {
	Kind      string `json:"kind"`                 // e.g. "api", "kes-fs", "kes-vault"
	Location  string `json:"location,omitempty"`   // where the source lives
	Name      string `json:"name,omitempty"`       // original name at the source
	CreatedAt string `json:"created_at,omitempty"` // original creation time (RFC 3339)
	CreatedBy string `json:"created_by,omitempty"` // original creator
	Format    string `json:"format,omitempty"`     // stored-value format at the source
	// Replaced is set when the import replaced other material under the
	// same name (migrate --force); the older versions stay.
	Replaced bool `json:"replaced,omitempty"`
}

// KeyVersionDeleted is the payload of key.version_deleted.v1.
type KeyVersionDeleted struct {
	Name        string `json:"name"`
	Version     uint32 `json:"version"`
	Fingerprint string `json:"fingerprint"`
}

// KeyDeleted is the payload of key.deleted.v1: every remaining version of
// the key is destroyed and its sealed material erased.
type KeyDeleted struct {
	Name         string   `json:"name"`
	Versions     []uint32 `json:"versions"`
	Fingerprints []string `json:"fingerprints"`
	// Reason is "scheduled" when a scheduled deletion was carried out;
	// empty for an immediate deletion. (Optional: absent in older events.)
	Reason string `json:"reason,omitempty"`
}

// Event types of the key lifecycle: disable, scheduled deletion,
// tombstones. A destroyed key's name stays reserved (a tombstone) until
// an admin releases it, so a client cannot silently re-create it.
const (
	TypeKeyDisabled          = "key.disabled.v1"
	TypeKeyEnabled           = "key.enabled.v1"
	TypeKeyDeletionScheduled = "key.deletion_scheduled.v1"
	TypeKeyRestored          = "key.restored.v1"
	TypeKeyNameReleased      = "key.name_released.v1"
)

// KeyDisabled is the payload of key.disabled.v1. Version 0 means the whole
// key; otherwise only that version.
type KeyDisabled struct {
	Name    string `json:"name"`
	Version uint32 `json:"version,omitempty"`
}

// KeyEnabled is the payload of key.enabled.v1, the reverse of KeyDisabled.
// Version 0 means the whole key; otherwise only that version.
type KeyEnabled struct {
	Name    string `json:"name"`
	Version uint32 `json:"version,omitempty"`
}

// KeyDeletionScheduled marks a key pending deletion: unusable, restorable
// until Deadline, destroyed after it.
type KeyDeletionScheduled struct {
	Name     string    `json:"name"`
	Deadline time.Time `json:"deadline"`
}

// KeyRestored cancels a scheduled deletion.
type KeyRestored struct {
	Name string `json:"name"`
}

// KeyNameReleased lifts the tombstone of a destroyed key, so the name can
// be used for a new key.
type KeyNameReleased struct {
	Name string `json:"name"`
}

// TypeKeyTransitConfigured is the event of the Transit settings of a key
// (the Vault Transit API's key options that kmsledger keys have no other
// word for).
const TypeKeyTransitConfigured = "key.transit_configured.v1"

// KeyTransitConfigured is the payload of key.transit_configured.v1: the
// key's Transit settings as a whole (each event replaces the previous
// ones). Derived is fixed by the key's first such event.
type KeyTransitConfigured struct {
	Name string `json:"name"`
	// Derived: Transit ciphertexts use a key derived from the request's
	// context (hsm.Key.TransitEncrypt).
	Derived bool `json:"derived,omitempty"`
	// DeletionAllowed: the Transit API may delete the key.
	DeletionAllowed bool `json:"deletion_allowed,omitempty"`
	// MinDecryptionVersion: older versions do not decrypt over Transit
	// (0 or 1 = every version).
	MinDecryptionVersion uint32 `json:"min_decryption_version,omitempty"`
	// MinEncryptionVersion: the oldest version Transit encrypts with when
	// asked for one (0 = any).
	MinEncryptionVersion uint32 `json:"min_encryption_version,omitempty"`
}
