package ledger

// Event types of the root of trust (subject SystemSubject()): the Root
// Encryption Key is sealed under every HSM that was added; any one of
// them opens it at start.
const (
	TypeHSMAdded   = "system.hsm_added.v1"
	TypeHSMRemoved = "system.hsm_removed.v1"
)

// The kinds of HSM backend, as recorded in HSMAdded.Kind and
// SystemInitialized.HSMKind and shown by ls-hsm.
const (
	HSMKindSoft   = "soft"   // a software HSM key (hsm/softkey)
	HSMKindPKCS11 = "pkcs11" // a key on a PKCS#11 token (hsm/pkcs11)
	// HSMKindRemote is a key held by another kmsledger (or minkms) server
	// (hsm/remotekms; `minkms:` in the configuration file, minkms's
	// spelling). Its recorded value stays "kmsledger": events already
	// written carry it (testdata/events/system.hsm_added.v1.json) and must
	// replay to the same state and the same ls-hsm output.
	HSMKindRemote = "kmsledger"
)

// HSMAdded records the REK sealed under one more HSM. The sealed REK is
// useless without that HSM.
type HSMAdded struct {
	Name      string `json:"name"`       // name in the server configuration
	Kind      string `json:"kind"`       // HSMKindSoft, HSMKindPKCS11 or HSMKindRemote
	KeyID     string `json:"key_id"`     // non-secret id of the HSM key
	SealedREK []byte `json:"sealed_rek"` // REK keyset sealed by that HSM
}

// HSMRemoved records that the REK sealed under an HSM is no longer to be
// used (the sealing stays in the history; nodes ignore it).
type HSMRemoved struct {
	Name  string `json:"name"`
	KeyID string `json:"key_id"`
}
