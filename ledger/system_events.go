package ledger

// Event types of the system and enclave aggregates. A type string is a
// contract: it is never changed once written; a new schema gets a new
// version suffix and a new golden file under testdata/events/.
const (
	TypeSystemInitialized = "system.initialized.v1"
	TypeEnclaveCreated    = "enclave.created.v1"
	TypeEnclaveDeleted    = "enclave.deleted.v1"
)

// SystemInitialized is the first event of every ledger. It records the
// Root Encryption Key sealed by the HSM (never the REK itself) and the
// root (SysAdmin) identity.
type SystemInitialized struct {
	SealedREK    []byte `json:"sealed_rek"`    // REK keyset sealed by the HSM
	HSMKeyID     string `json:"hsm_key_id"`    // non-secret id of the sealing HSM key
	RootIdentity string `json:"root_identity"` // h1: identity of the SysAdmin
	DefaultType  string `json:"default_type"`  // key type used when a request leaves it empty

	// Optional (absent in ledgers initialised before HSM management):
	HSMName       string `json:"hsm_name,omitempty"`        // configured name of the sealing HSM
	HSMKind       string `json:"hsm_kind,omitempty"`        // HSMKindSoft, HSMKindPKCS11 or HSMKindRemote
	SealedRootKey []byte `json:"sealed_root_key,omitempty"` // root API key sealed under the REK (when not derived from a soft HSM key)
}

// EnclaveCreated records a new enclave.
type EnclaveCreated struct {
	Name string `json:"name"`
}

// EnclaveDeleted records the deletion of an enclave with everything in it.
// Its sealed key material is erased from SECRETS; Fingerprints commits to
// what was destroyed without revealing it.
type EnclaveDeleted struct {
	Name         string   `json:"name"`
	Fingerprints []string `json:"fingerprints,omitempty"`
}
