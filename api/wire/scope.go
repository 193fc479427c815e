package wire

// Scope is what a command acts on, named after the part of its text name
// before the colon (KEY:DECRYPT acts on a key). The protocol numbers the
// commands of each scope in their own hundred (command.go); code
// outside this file asks Command.Scope instead of comparing codes.
type Scope uint8

// The scopes of the commands. ScopeUnknown is the zero value: the scope of
// a code that names no command.
const (
	ScopeUnknown  Scope = iota
	ScopeCluster        // CLUSTER:*, the nodes and HSMs of the cluster
	ScopeEnclave        // ENCLAVE:*, the enclaves themselves
	ScopeKey            // KEY:*, the keys of one enclave
	ScopePolicy         // POLICY:*, the policies of one enclave
	ScopeIdentity       // IDENTITY:*, the identities of one enclave
)

// String returns the scope's name as it starts a command's text name
// ("KEY"), or "UNKNOWN".
func (s Scope) String() string {
	switch s {
	case ScopeCluster:
		return "CLUSTER"
	case ScopeEnclave:
		return "ENCLAVE"
	case ScopeKey:
		return "KEY"
	case ScopePolicy:
		return "POLICY"
	case ScopeIdentity:
		return "IDENTITY"
	}
	return "UNKNOWN"
}

// InEnclave reports whether commands of scope s act inside one enclave
// (keys, policies and identities), as opposed to the cluster, the
// enclaves themselves, or nothing known.
func (s Scope) InEnclave() bool {
	return s == ScopeKey || s == ScopePolicy || s == ScopeIdentity
}
