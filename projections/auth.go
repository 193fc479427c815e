package projections

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
)

// AppRole is an AppRole role of the Transit API: its logins act as
// Identity. SecretIDs maps the hash of each secret id to its accessor.
type AppRole struct {
	Role      string
	RoleID    string
	Identity  string
	TokenTTL  time.Duration // 0: the server's default
	SecretIDs map[string]string
	CreatedAt time.Time
	CreatedBy string
}

// Token is a token issued by a Transit login, by its hash. It is valid
// until ExpiresAt while its identity exists (deleting the identity drops
// its tokens).
type Token struct {
	Accessor  string
	Hash      string
	Identity  string
	Path      string
	Role      string
	TTL       time.Duration
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// TokenByAccessor returns the token with the accessor, or nil.
func (e *Enclave) TokenByAccessor(accessor string) *Token {
	for _, t := range e.Tokens {
		if t.Accessor == accessor {
			return t
		}
	}
	return nil
}

// AppRoleByID returns the role whose role id is id, or nil.
func (e *Enclave) AppRoleByID(id string) *AppRole {
	for _, r := range e.AppRoles {
		if r.RoleID == id {
			return r
		}
	}
	return nil
}

func (e *Enclave) appRoleSet(ev ledger.Event, p ledger.AppRoleSet) error {
	r := &AppRole{Role: p.Role, RoleID: p.RoleID, Identity: p.Identity, TokenTTL: time.Duration(p.TokenTTL) * time.Second,
		SecretIDs: map[string]string{}, CreatedAt: ev.Time, CreatedBy: ev.Actor}
	if old := e.AppRoles[p.Role]; old != nil {
		r.SecretIDs, r.CreatedAt, r.CreatedBy = old.SecretIDs, old.CreatedAt, old.CreatedBy
	}
	e.setAppRole(r)
	return nil
}

func (e *Enclave) appRoleSecretIDAdded(ev ledger.Event, p ledger.AppRoleSecretIDAdded) error {
	old := e.AppRoles[p.Role]
	if old == nil {
		return fmt.Errorf("projections: %s at seq %d: no role %q", ev.Type, ev.Seq, p.Role)
	}
	r := *old
	r.SecretIDs = maps.Clone(old.SecretIDs)
	r.SecretIDs[p.Hash] = p.Accessor
	e.setAppRole(&r)
	return nil
}

func (e *Enclave) appRoleDeleted(_ ledger.Event, p ledger.AppRoleDeleted) error {
	delete(e.AppRoles, p.Role)
	return nil
}

func (e *Enclave) setAppRole(r *AppRole) {
	if e.AppRoles == nil {
		e.AppRoles = map[string]*AppRole{}
	}
	e.AppRoles[r.Role] = r
}

// tokenIssued adds the token and forgets the tokens that expired by the
// event's time (decided by the ledger's clock, so every replay forgets the
// same ones): logins do not grow the state without bound.
func (e *Enclave) tokenIssued(ev ledger.Event, p ledger.TokenIssued) error {
	if e.Tokens == nil {
		e.Tokens = map[string]*Token{}
	}
	for h, t := range e.Tokens {
		if !ev.Time.Before(t.ExpiresAt) {
			delete(e.Tokens, h)
		}
	}
	e.Tokens[p.Hash] = &Token{Accessor: p.Accessor, Hash: p.Hash, Identity: p.Identity, Path: p.Path, Role: p.Role,
		TTL: time.Duration(p.TTL) * time.Second, IssuedAt: ev.Time, ExpiresAt: p.ExpiresAt}
	return nil
}

func (e *Enclave) tokenRenewed(ev ledger.Event, p ledger.TokenRenewed) error {
	old := e.TokenByAccessor(p.Accessor)
	if old == nil {
		return fmt.Errorf("projections: %s at seq %d: no token %q", ev.Type, ev.Seq, p.Accessor)
	}
	t := *old
	t.ExpiresAt = p.ExpiresAt
	e.Tokens[t.Hash] = &t
	return nil
}

func (e *Enclave) tokenRevoked(_ ledger.Event, p ledger.TokenRevoked) error {
	if t := e.TokenByAccessor(p.Accessor); t != nil {
		delete(e.Tokens, t.Hash)
	}
	return nil
}

// dropTokens removes the tokens of the identities.
func (e *Enclave) dropTokens(ids []string) {
	for h, t := range e.Tokens {
		if slices.Contains(ids, t.Identity) {
			delete(e.Tokens, h)
		}
	}
}
