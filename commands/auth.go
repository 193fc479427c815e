package commands

// Commands of the Transit API's authentication: AppRole roles and the
// tokens its logins issue (ledger/auth_events.go). Secret ids and tokens
// reach the ledger only as hashes, made by the caller (api).

import (
	"time"

	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// ErrAppRoleNotFound: no such AppRole role.
var ErrAppRoleNotFound = newClientError("approle role not found")

// ErrTokenNotFound: no such token (expired tokens are still found).
var ErrTokenNotFound = newClientError("token not found")

// SetAppRole creates or updates an AppRole role whose logins act as
// Identity, an identity of the enclave. TokenTTL 0 is the server's
// default.
type SetAppRole struct {
	Enclave, Role, RoleID, Identity string
	TokenTTL                        time.Duration
}

// AddAppRoleSecretID adds a secret id, by its hex SHA-256, to a role.
type AddAppRoleSecretID struct {
	Enclave, Role, Accessor, Hash string
}

// DeleteAppRole deletes a role and its secret ids.
type DeleteAppRole struct{ Enclave, Role string }

// IssueToken records a token, by its hex SHA-256 (the accessor is its
// first 24 digits), bound to Identity until ExpiresAt. The identity must
// be the root identity or one of the enclave.
type IssueToken struct {
	Enclave, Hash, Identity, Path, Role string
	TTL                                 time.Duration
	ExpiresAt                           time.Time
}

// RenewToken sets a new expiry of a token.
type RenewToken struct {
	Enclave, Accessor string
	ExpiresAt         time.Time
}

// RevokeToken ends a token now.
type RevokeToken struct{ Enclave, Accessor string }

func (d *decision) setAppRole(e *projections.Enclave, c SetAppRole) (Decision, error) {
	if e.Identities[c.Identity] == nil {
		return Decision{}, ErrIdentityNotFound
	}
	if r := e.AppRoleByID(c.RoleID); r != nil && r.Role != c.Role {
		return Decision{}, refuse(ErrInvalidArgument, "role id already used by role %q", r.Role)
	}
	if c.TokenTTL < 0 {
		return Decision{}, refuse(ErrInvalidArgument, "token ttl is negative")
	}
	return d.event(e.Name, ledger.AppRoleSubject(e.Name, c.Role), ledger.TypeAppRoleSet, ledger.AppRoleSet{
		Role: c.Role, RoleID: c.RoleID, Identity: c.Identity, TokenTTL: int64(c.TokenTTL / time.Second),
	})
}

func (d *decision) addAppRoleSecretID(e *projections.Enclave, c AddAppRoleSecretID) (Decision, error) {
	if e.AppRoles[c.Role] == nil {
		return Decision{}, ErrAppRoleNotFound
	}
	return d.event(e.Name, ledger.AppRoleSubject(e.Name, c.Role), ledger.TypeAppRoleSecretIDAdded,
		ledger.AppRoleSecretIDAdded{Role: c.Role, Accessor: c.Accessor, Hash: c.Hash})
}

func (d *decision) deleteAppRole(e *projections.Enclave, c DeleteAppRole) (Decision, error) {
	if e.AppRoles[c.Role] == nil {
		return Decision{}, ErrAppRoleNotFound
	}
	return d.event(e.Name, ledger.AppRoleSubject(e.Name, c.Role), ledger.TypeAppRoleDeleted, ledger.AppRoleDeleted{Role: c.Role})
}

func (d *decision) issueToken(e *projections.Enclave, c IssueToken) (Decision, error) {
	if c.Identity != d.s.RootIdentity && e.Identities[c.Identity] == nil {
		return Decision{}, ErrIdentityNotFound
	}
	if e.Tokens[c.Hash] != nil {
		return Decision{}, refuse(ErrInvalidArgument, "token already issued")
	}
	if !c.ExpiresAt.After(d.env.Now) || c.TTL <= 0 {
		return Decision{}, refuse(ErrInvalidArgument, "token expiry is not in the future")
	}
	acc := c.Hash[:24]
	return d.event(e.Name, ledger.TokenSubject(e.Name, acc), ledger.TypeTokenIssued, ledger.TokenIssued{
		Accessor: acc, Hash: c.Hash, Identity: c.Identity, Path: c.Path, Role: c.Role,
		TTL: int64(c.TTL / time.Second), ExpiresAt: c.ExpiresAt.UTC(),
	})
}

func (d *decision) renewToken(e *projections.Enclave, c RenewToken) (Decision, error) {
	if e.TokenByAccessor(c.Accessor) == nil {
		return Decision{}, ErrTokenNotFound
	}
	if !c.ExpiresAt.After(d.env.Now) {
		return Decision{}, refuse(ErrInvalidArgument, "token expiry is not in the future")
	}
	return d.event(e.Name, ledger.TokenSubject(e.Name, c.Accessor), ledger.TypeTokenRenewed,
		ledger.TokenRenewed{Accessor: c.Accessor, ExpiresAt: c.ExpiresAt.UTC()})
}

func (d *decision) revokeToken(e *projections.Enclave, c RevokeToken) (Decision, error) {
	if e.TokenByAccessor(c.Accessor) == nil {
		return Decision{}, ErrTokenNotFound
	}
	return d.event(e.Name, ledger.TokenSubject(e.Name, c.Accessor), ledger.TypeTokenRevoked, ledger.TokenRevoked{Accessor: c.Accessor})
}

// validHash reports whether s is 64 lowercase hex digits (a SHA-256).
func validHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
