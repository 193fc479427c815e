package commands

import (
	"github.com/kmsledger/kmsledger/ledger"
)

// validate checks every name of a command once, at the edge, so that all
// names that reach the ledger are safe subject tokens.
func validate(cmd Command) error {
	var names []string
	switch c := cmd.(type) {
	case CreateEnclave:
		names = []string{c.Name}
	case DeleteEnclave:
		names = []string{c.Name}
	case CreateKey:
		names = []string{c.Enclave, c.Name}
	case ImportKey:
		names = []string{c.Enclave, c.Name}
	case DeleteKey:
		if c.All && c.Version != 0 {
			return refuse(ErrInvalidArgument, "a version together with all versions")
		}
		names = []string{c.Enclave, c.Name}
	case CreateIdentity:
		if c.Privilege != "" && c.Privilege != ledger.PrivilegeAdmin && c.Privilege != ledger.PrivilegeUser {
			return refuse(ErrInvalidArgument, "privilege %q: want Admin or User", c.Privilege)
		}
		if !validIdentity(c.Identity) {
			return refuse(ErrInvalidName, "identity %q", c.Identity)
		}
		names = []string{c.Enclave}
	case DeleteIdentity:
		if !validIdentity(c.Identity) {
			return refuse(ErrInvalidName, "identity %q", c.Identity)
		}
		names = []string{c.Enclave}
	case DisableKey:
		names = []string{c.Enclave, c.Name}
	case EnableKey:
		names = []string{c.Enclave, c.Name}
	case ScheduleKeyDeletion:
		names = []string{c.Enclave, c.Name}
	case RestoreKey:
		names = []string{c.Enclave, c.Name}
	case DestroyScheduledKey:
		names = []string{c.Enclave, c.Name}
	case ReleaseKeyName:
		names = []string{c.Enclave, c.Name}
	case ConfigureTransitKey:
		names = []string{c.Enclave, c.Name}
	case SetAppRole, AddAppRoleSecretID, DeleteAppRole, IssueToken, RenewToken, RevokeToken:
		var err error
		if names, err = transitNames(c); err != nil {
			return err
		}
	case CreatePolicy:
		names = []string{c.Enclave, c.Name}
	case DeletePolicy:
		names = []string{c.Enclave, c.Name}
	case AssignPolicy:
		if !validIdentity(c.Identity) {
			return refuse(ErrInvalidName, "identity %q", c.Identity)
		}
		names = []string{c.Enclave, c.Policy}
	}
	for _, n := range names {
		if !ledger.ValidName(n) {
			return refuse(ErrInvalidName, "%q", n)
		}
	}
	return nil
}

// transitNames checks the Transit authentication commands (validate's
// cases for AppRole roles, secret ids and tokens) and returns their names.
func transitNames(cmd Command) ([]string, error) {
	switch c := cmd.(type) {
	case SetAppRole:
		if !validIdentity(c.Identity) {
			return nil, refuse(ErrInvalidName, "identity %q", c.Identity)
		}
		return []string{c.Enclave, c.Role, c.RoleID}, nil
	case AddAppRoleSecretID:
		if !validHash(c.Hash) {
			return nil, refuse(ErrInvalidArgument, "secret id hash: want 64 hex digits")
		}
		return []string{c.Enclave, c.Role, c.Accessor}, nil
	case DeleteAppRole:
		return []string{c.Enclave, c.Role}, nil
	case IssueToken:
		if !validHash(c.Hash) {
			return nil, refuse(ErrInvalidArgument, "token hash: want 64 hex digits")
		}
		return []string{c.Enclave, c.Hash[:24]}, nil
	case RenewToken:
		return []string{c.Enclave, c.Accessor}, nil
	case RevokeToken:
		return []string{c.Enclave, c.Accessor}, nil
	}
	return nil, nil
}

// validIdentity reports whether s is "h1:" followed by 43 base64url
// characters (a SHA-256). It is checked here too because identities are
// subject tokens.
func validIdentity(s string) bool {
	if len(s) != 46 || s[:3] != "h1:" {
		return false
	}
	for _, c := range s[3:] {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
