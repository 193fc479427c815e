package ledger

// Event types of the policy aggregate (subject PolicySubject(enclave, name)).
const (
	TypePolicyCreated = "policy.created.v1"
	TypePolicyDeleted = "policy.deleted.v1"
)

// PolicyCreated creates or overwrites a policy. Allow and Deny map a
// command's text name (e.g. "KEY:GENERATE") to name patterns: an exact
// name, "prefix*" or "*".
type PolicyCreated struct {
	Name  string              `json:"name"`
	Allow map[string][]string `json:"allow,omitempty"`
	Deny  map[string][]string `json:"deny,omitempty"`
}

// PolicyDeleted deletes a policy. Identities assigned to it lose its rights.
type PolicyDeleted struct {
	Name string `json:"name"`
}
