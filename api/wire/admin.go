package wire

import "time"

// JSON bodies of the admin API (/v1/admin/...), which carries what the
// kms framing has no command for: key lifecycle, key details and rewrap.

// KeyInfo describes a key with every live version.
type KeyInfo struct {
	Name             string        `json:"name"`
	State            string        `json:"state"` // "enabled", "disabled" or "pending-deletion"
	DeletionDeadline *time.Time    `json:"deletion_deadline,omitempty"`
	CreatedAt        time.Time     `json:"created_at"`
	CreatedBy        string        `json:"created_by"`
	Versions         []VersionInfo `json:"versions"`
}

// VersionInfo is one key version in KeyInfo.
type VersionInfo struct {
	Version     uint32        `json:"version"`
	Type        string        `json:"type"`
	State       string        `json:"state"` // "enabled" or "disabled"
	CreatedAt   time.Time     `json:"created_at"`
	CreatedBy   string        `json:"created_by"`
	Fingerprint string        `json:"fingerprint"`         // commitment to the material, not the material
	LastUsed    *time.Time    `json:"last_used,omitempty"` // last crypto use seen by the answering node since it started
	Source      *ImportSource `json:"source,omitempty"`
	// CiphertextFormat and CiphertextAEAD describe the ciphertexts this
	// version produces now: format 2 (XAES-256-GCM or XChaCha20-Poly1305).
	CiphertextFormat int    `json:"ciphertext_format"`
	CiphertextAEAD   string `json:"ciphertext_aead"`
	// Usage counts this version's crypto operations on the answering node
	// since it started; other nodes count their own.
	Usage VersionUsage `json:"usage"`
}

// VersionUsage counts successful crypto operations with one key version on
// one node since it started (in memory; not stored, not summed over nodes).
type VersionUsage struct {
	Encryptions          uint64 `json:"encryptions"`            // GenerateKey, Encrypt, rewrap output
	Decryptions          uint64 `json:"decryptions"`            // Decrypt and rewrap input, any format
	OldFormatDecryptions uint64 `json:"old_format_decryptions"` // of them: format 1, KES or MinIO ciphertexts
}

// ImportSource is the provenance of imported key material.
type ImportSource struct {
	Kind      string `json:"kind"`
	Location  string `json:"location,omitempty"`
	Name      string `json:"name,omitempty"`
	CreatedAt string `json:"created_at,omitempty"`
	CreatedBy string `json:"created_by,omitempty"`
	Format    string `json:"format,omitempty"`
}

// KeyInfoList is the body of GET /v1/admin/{enclave}/keys.
type KeyInfoList struct {
	Keys []KeyInfo `json:"keys"`
}

// KeyActionRequest is the body of POST /v1/admin/{enclave}/keys/{name}/{action}.
type KeyActionRequest struct {
	Version        uint32 `json:"version,omitempty"`         // disable, enable: 0 = the whole key
	After          string `json:"after,omitempty"`           // schedule-deletion: e.g. "7d", "36h"
	Ciphertext     []byte `json:"ciphertext,omitempty"`      // rewrap
	AssociatedData []byte `json:"associated_data,omitempty"` // rewrap
}

// RewrapResponse carries a ciphertext re-encrypted under the latest version.
type RewrapResponse struct {
	Version    uint32 `json:"version"`
	Ciphertext []byte `json:"ciphertext"`
}

// KeyImportRequest is the body of POST /v1/admin/{enclave}/keys/{name}/import:
// a migration import with provenance and the source's HMAC key.
type KeyImportRequest struct {
	Type       string        `json:"type"`
	Key        []byte        `json:"key"`
	HMACKey    []byte        `json:"hmac_key,omitempty"`
	Source     *ImportSource `json:"source,omitempty"`
	CommandID  string        `json:"command_id,omitempty"`  // idempotency key (deterministic for migrations)
	OnConflict string        `json:"on_conflict,omitempty"` // "abort" (default), "skip" or "replace"
}

// KeyImportResponse says what an import did: "imported", "unchanged"
// (the key holds this material already), "skipped" (other material,
// on_conflict skip) or "replaced" (added as the new latest version).
//
// Replayed is set when the request's command_id was already applied to
// this key: nothing was written, and Result and Version are those of the
// first import.
type KeyImportResponse struct {
	Result   string `json:"result"`
	Version  uint32 `json:"version,omitempty"`
	Replayed bool   `json:"replayed,omitempty"`
}

// HSMInfo describes an HSM of the root of trust (GET /v1/admin/hsm).
type HSMInfo struct {
	Name       string    `json:"name"`
	Kind       string    `json:"kind"`
	KeyID      string    `json:"key_id"`
	Sealed     bool      `json:"sealed"`     // the REK is sealed under it (it can start the node)
	Configured bool      `json:"configured"` // this node has it in its configuration
	Status     string    `json:"status,omitempty"`
	AddedAt    time.Time `json:"added_at,omitzero"`
	AddedBy    string    `json:"added_by,omitempty"`
}

// HSMList is the body of GET /v1/admin/hsm.
type HSMList struct {
	HSMs []HSMInfo `json:"hsms"`
}
