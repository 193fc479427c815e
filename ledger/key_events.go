package ledger

// Event types of the key aggregate (subject KeySubject(enclave, name)).
const (
	TypeKeyCreated        = "key.created.v1"         // first version of a new key, or an added version
	TypeKeyImported       = "key.imported.v1"        // a version with material supplied by the caller
	TypeKeyVersionDeleted = "key.version_deleted.v1" // one version destroyed
	TypeKeyDeleted        = "key.deleted.v1"         // every version destroyed
)

// KeyVersionCreated is the payload of key.created.v1 and key.imported.v1.
// The material itself lives sealed in SECRETS under SecretRef; the event
// carries only a reference and a fingerprint (a commitment that does not
// reveal the material).
type KeyVersionCreated struct {
	Name        string `json:"name"`
	Version     uint32 `json:"version"`
	Type        string `json:"type"` // "AES256" or "ChaCha20"
	SecretRef   string `json:"secret_ref"`
	Fingerprint string `json:"fingerprint"`

	// Source describes where imported material came from (key.imported.v1
	// only); empty for the kms API's ImportKey.
	Source *ImportSource `json:"source,omitempty"`
}

// ImportSource is the provenance of imported key material.
type ImportSource struct {
	Kind      string `json:"kind"`                 // e.g. "api", "kes-fs", "kes-vault"
	Location  string `json:"location,omitempty"`   // where the source lives
	Name      string `json:"name,omitempty"`       // original name at the source
	CreatedAt string `json:"created_at,omitempty"` // original creation time (RFC 3339)
	CreatedBy string `json:"created_by,omitempty"` // original creator
	Format    string `json:"format,omitempty"`     // stored-value format at the source
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
}
