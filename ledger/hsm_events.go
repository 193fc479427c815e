package ledger

// Event types of the root of trust (subject SystemSubject()): the Root
// Encryption Key is sealed under every HSM that was added; any one of
// them opens it at start.
const (
	TypeHSMAdded   = "system.hsm_added.v1"
	TypeHSMRemoved = "system.hsm_removed.v1"
)

// HSMAdded records the REK sealed under one more HSM. The sealed REK is
// useless without that HSM.
type HSMAdded struct {
	Name      string `json:"name"`       // name in the server configuration
	Kind      string `json:"kind"`       // soft, pkcs11 or kmsledger
	KeyID     string `json:"key_id"`     // non-secret id of the HSM key
	SealedREK []byte `json:"sealed_rek"` // REK keyset sealed by that HSM
}

// HSMRemoved records that the REK sealed under an HSM is no longer to be
// used (the sealing stays in the history; nodes ignore it).
type HSMRemoved struct {
	Name  string `json:"name"`
	KeyID string `json:"key_id"`
}
