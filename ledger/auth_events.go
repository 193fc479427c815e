package ledger

import "time"

// Event types of the Transit API's authentication (README.md, "Vault
// Transit API"): AppRole roles (subject AppRoleSubject) and the tokens
// issued by logins (subject TokenSubject). No secret is ever in an event:
// secret ids and tokens appear only as SHA-256 hashes.
const (
	TypeAppRoleSet           = "approle.role_set.v1"
	TypeAppRoleSecretIDAdded = "approle.secret_id_added.v1"
	TypeAppRoleDeleted       = "approle.role_deleted.v1"
	TypeTokenIssued          = "token.issued.v1"
	TypeTokenRenewed         = "token.renewed.v1"
	TypeTokenRevoked         = "token.revoked.v1"
)

// AppRoleSet is the payload of approle.role_set.v1: an AppRole role,
// created or updated, whose logins act as Identity (an identity of the
// enclave).
type AppRoleSet struct {
	Role     string `json:"role"`
	RoleID   string `json:"role_id"`
	Identity string `json:"identity"`
	// TokenTTL is the lifetime of the role's tokens in seconds (0: the
	// server's default).
	TokenTTL int64 `json:"token_ttl,omitempty"`
}

// AppRoleSecretIDAdded is the payload of approle.secret_id_added.v1: a
// secret id of a role, by its hash (hex SHA-256 of the secret id).
type AppRoleSecretIDAdded struct {
	Role     string `json:"role"`
	Accessor string `json:"accessor"`
	Hash     string `json:"hash"`
}

// AppRoleDeleted is the payload of approle.role_deleted.v1: the role and
// its secret ids are gone; tokens it issued stay valid until they expire.
type AppRoleDeleted struct {
	Role string `json:"role"`
}

// TokenIssued is the payload of token.issued.v1: a token bound to
// Identity, by its hash (hex SHA-256 of the token); its accessor is the
// first 24 hex digits of the hash.
type TokenIssued struct {
	Accessor string `json:"accessor"`
	Hash     string `json:"hash"`
	Identity string `json:"identity"`
	Path     string `json:"path"`           // the login: "auth/approle/login", "auth/cert/login"
	Role     string `json:"role,omitempty"` // the AppRole role
	TTL      int64  `json:"ttl"`            // seconds, what a renewal extends by
	// ExpiresAt is when the token stops working.
	ExpiresAt time.Time `json:"expires_at"`
}

// TokenRenewed is the payload of token.renewed.v1: a new expiry.
type TokenRenewed struct {
	Accessor  string    `json:"accessor"`
	ExpiresAt time.Time `json:"expires_at"`
}

// TokenRevoked is the payload of token.revoked.v1: the token stops
// working now.
type TokenRevoked struct {
	Accessor string `json:"accessor"`
}
