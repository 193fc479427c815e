package ledger

// Event types of the identity aggregate (subject IdentitySubject(enclave, id)).
const (
	TypeIdentityCreated = "identity.created.v1"
	TypeIdentityDeleted = "identity.deleted.v1"
	TypePolicyAssigned  = "identity.policy_assigned.v1"
)

// Privileges of an identity, as the kms API names them.
const (
	PrivilegeAdmin = "Admin"
	PrivilegeUser  = "User"
)

// IdentityCreated creates or overwrites an identity of an enclave.
type IdentityCreated struct {
	Identity       string            `json:"identity"`
	Privilege      string            `json:"privilege"` // PrivilegeAdmin or PrivilegeUser
	ServiceAccount bool              `json:"service_account,omitempty"`
	Parent         string            `json:"parent,omitempty"` // creator of a service account
	Tags           map[string]string `json:"tags,omitempty"`
}

// IdentityDeleted deletes an identity and, with it, its service accounts.
type IdentityDeleted struct {
	Identity        string   `json:"identity"`
	ServiceAccounts []string `json:"service_accounts,omitempty"`
}

// PolicyAssigned assigns a policy to an identity.
type PolicyAssigned struct {
	Identity string `json:"identity"`
	Policy   string `json:"policy"`
}
