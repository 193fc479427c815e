package api

// Logins of the Transit API (transit.go): AppRole roles and secret ids,
// auth/approle/login and auth/cert/login, and the tokens they issue, with
// lookup, renewal and revocation.
//
// A login token is "kmsl." ‖ base64url(32 random bytes). The server keeps
// only its SHA-256 (token.issued.v1); the accessor is the first 24 hex
// digits of that hash. A token acts as the identity it was issued to, in
// the enclave of that identity, until it expires, is revoked, or the
// identity is deleted. AppRole roles are managed by the Admins of the
// role's enclave; their secret ids are kept as SHA-256 hashes too.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/api/transit"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

const (
	// loginTokenPrefix starts every token a login issues.
	loginTokenPrefix = "kmsl."
	// DefaultTransitTokenTTL is the lifetime of login tokens unless the
	// configuration or the AppRole role says otherwise (Vault's default).
	DefaultTransitTokenTTL = 768 * time.Hour
)

// newSecret returns prefix ‖ base64url of 32 random bytes and the hex
// SHA-256 of the whole.
func newSecret(prefix string) (secret, hash string) {
	var b [32]byte
	rand.Read(b[:])
	secret = prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, hashHex(secret)
}

func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// tokenTTL is the configured default lifetime of login tokens.
func (v *vaultAPI) tokenTTL() time.Duration {
	if d := v.s.cfg.TransitTokenTTL; d > 0 {
		return d
	}
	return DefaultTransitTokenTTL
}

// mountEnclaves are the enclaves of the Transit mounts, sorted.
func (v *vaultAPI) mountEnclaves() []string {
	return slices.Compact(slices.Sorted(maps.Values(v.s.cfg.TransitMounts)))
}

// issued finds a login token: its enclave and record; nil if it is none,
// expired, or its identity is gone.
func (v *vaultAPI) issued(tok string) (string, *projections.Token) {
	if !strings.HasPrefix(tok, loginTokenPrefix) {
		return "", nil
	}
	h := hashHex(tok)
	now := time.Now()
	var enclave string
	var out *projections.Token
	v.s.proj.View(func(st *projections.State) {
		for _, name := range v.mountEnclaves() {
			e := st.Enclaves[name]
			if e == nil {
				continue
			}
			if t := e.Tokens[h]; t != nil && now.Before(t.ExpiresAt) {
				enclave, out = name, t
				return
			}
		}
	})
	return enclave, out
}

// requestToken is the token of the request (X-Vault-Token, or Bearer).
func requestToken(r *http.Request) string {
	if tok := r.Header.Get("X-Vault-Token"); tok != "" {
		return tok
	}
	b, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(b)
}

// issue records a new token for identity in enclave and answers the
// login with it.
func (v *vaultAPI) issue(w http.ResponseWriter, r *http.Request, in routeReq, enclave, identity, path, role string, ttl time.Duration, check func(*projections.State) error) {
	tok, h := newSecret(loginTokenPrefix)
	cmd := commands.IssueToken{Enclave: enclave, Hash: h, Identity: identity, Path: path, Role: role, TTL: ttl,
		ExpiresAt: time.Now().Add(ttl)}
	if _, err := v.s.h.Execute(in.ctx, identity, "", commands.Checked{Command: cmd, Check: check}); err != nil {
		v.fail(w, r, err)
		return
	}
	if info := auditFrom(w); info != nil {
		info.identity, info.enclave = identity, enclave
	}
	resp := transit.NewResponse(nil)
	resp.Auth = &transit.Auth{ClientToken: tok, Accessor: h[:24], Policies: []string{"default"}, TokenPolicies: []string{"default"},
		Metadata: map[string]string{"identity": identity}, LeaseDuration: int64(ttl / time.Second), Renewable: true,
		TokenType: "service", Orphan: true}
	if role != "" {
		resp.Auth.Metadata["role_name"] = role
	}
	v.writeJSON(w, http.StatusOK, resp)
}

// POST auth/approle/login {role_id, secret_id}.
func (v *vaultAPI) approleLoginNoAuth(w http.ResponseWriter, r *http.Request, in routeReq) {
	f, err := fields(r, in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	roleID, _, _ := f.String("role_id")
	secretID, _, _ := f.String("secret_id")
	switch {
	case roleID == "":
		v.fail(w, r, vaultBad("missing role_id"))
		return
	case secretID == "":
		v.fail(w, r, vaultBad("missing secret_id"))
		return
	}
	h := hashHex(secretID)
	var enclave string
	var role projections.AppRole
	v.s.proj.View(func(st *projections.State) {
		for _, name := range v.mountEnclaves() {
			if e := st.Enclaves[name]; e != nil {
				if ar := e.AppRoleByID(roleID); ar != nil && ar.SecretIDs[h] != "" {
					enclave, role = name, *ar
					return
				}
			}
		}
	})
	invalid := vaultBad("invalid role or secret ID")
	if enclave == "" {
		v.fail(w, r, invalid)
		return
	}
	ttl := role.TokenTTL
	if ttl == 0 {
		ttl = v.tokenTTL()
	}
	// Decided again under the enclave's lock: the role and the secret id
	// still exist.
	check := func(st *projections.State) error {
		e := st.Enclaves[enclave]
		if e == nil || e.AppRoles[role.Role] == nil || e.AppRoles[role.Role].RoleID != roleID || e.AppRoles[role.Role].SecretIDs[h] == "" {
			return invalid
		}
		return nil
	}
	v.issue(w, r, in, enclave, role.Identity, "auth/approle/login", role.Role, ttl, check)
}

// POST auth/cert/login: a token for the identity of the client
// certificate, in the first Transit enclave (sorted) it belongs to.
func (v *vaultAPI) certLoginNoAuth(w http.ResponseWriter, r *http.Request, in routeReq) {
	invalid := vaultBad("invalid certificate or no client certificate supplied")
	id := callerOf(r)
	if id == "" {
		v.fail(w, r, invalid)
		return
	}
	var enclave string
	v.s.proj.View(func(st *projections.State) {
		for _, name := range v.mountEnclaves() {
			if e := st.Enclaves[name]; e != nil && (id == st.RootIdentity || e.Identities[id] != nil) {
				enclave = name
				return
			}
		}
	})
	if enclave == "" {
		v.fail(w, r, invalid)
		return
	}
	v.issue(w, r, in, enclave, id, "auth/cert/login", "", v.tokenTTL(), nil)
}

// GET auth/token/lookup-self.
func (v *vaultAPI) lookupSelf(w http.ResponseWriter, r *http.Request, in routeReq) {
	d := map[string]any{
		"accessor": accessorOf(in.identity), "creation_time": 0, "creation_ttl": 0, "display_name": "kmsledger-" + in.identity,
		"entity_id": "", "expire_time": nil, "explicit_max_ttl": 0, "id": "", "issue_time": time.Time{}.Format(time.RFC3339),
		"meta": map[string]string{"identity": in.identity}, "num_uses": 0, "orphan": true, "path": "auth/token/create",
		"policies": []string{"default"}, "renewable": false, "ttl": 0, "type": "service",
	}
	if _, t := v.issued(requestToken(r)); t != nil {
		d["accessor"], d["creation_time"], d["creation_ttl"] = t.Accessor, t.IssuedAt.Unix(), int64(t.TTL/time.Second)
		d["expire_time"], d["issue_time"], d["path"] = t.ExpiresAt.UTC().Format(time.RFC3339), t.IssuedAt.UTC().Format(time.RFC3339), t.Path
		d["renewable"], d["ttl"] = true, int64(time.Until(t.ExpiresAt)/time.Second)
		if t.Role != "" {
			d["meta"] = map[string]string{"identity": in.identity, "role_name": t.Role}
		}
	}
	v.reply(w, d)
}

// POST auth/token/renew-self {increment}: a login token lives on for
// increment (at most its TTL; default its TTL). API-key tokens do not
// expire: nothing to renew.
func (v *vaultAPI) renewSelf(w http.ResponseWriter, r *http.Request, in routeReq) {
	tok := requestToken(r)
	enclave, t := v.issued(tok)
	if t == nil {
		v.fail(w, r, vaultBad("invalid lease ID"))
		return
	}
	f, err := fields(r, in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	inc, ok, err := f.Duration("increment")
	if err != nil {
		v.fail(w, r, vaultBad(err.Error()))
		return
	}
	if !ok || inc <= 0 || inc > t.TTL {
		inc = t.TTL
	}
	cmd := commands.RenewToken{Enclave: enclave, Accessor: t.Accessor, ExpiresAt: time.Now().Add(inc)}
	if _, err := v.s.h.Execute(in.ctx, in.identity, "", cmd); err != nil {
		v.fail(w, r, err)
		return
	}
	resp := transit.NewResponse(nil)
	resp.Auth = &transit.Auth{ClientToken: tok, Accessor: t.Accessor, Policies: []string{"default"}, TokenPolicies: []string{"default"},
		Metadata: map[string]string{"identity": in.identity}, LeaseDuration: int64(inc / time.Second), Renewable: true,
		TokenType: "service", Orphan: true}
	v.writeJSON(w, http.StatusOK, resp)
}

// POST auth/token/revoke-self: a login token stops working now.
func (v *vaultAPI) revokeSelf(w http.ResponseWriter, r *http.Request, in routeReq) {
	enclave, t := v.issued(requestToken(r))
	if t == nil {
		v.fail(w, r, vaultBad("API-key tokens cannot be revoked: delete the identity"))
		return
	}
	if _, err := v.s.h.Execute(in.ctx, in.identity, "", commands.RevokeToken{Enclave: enclave, Accessor: t.Accessor}); err != nil {
		v.fail(w, r, err)
		return
	}
	noContent(w)
}

// roleEnclave is the enclave an AppRole request names ("enclave"), or the
// only Transit enclave.
func (v *vaultAPI) roleEnclave(f transit.Fields) (string, error) {
	enclaves := v.mountEnclaves()
	e, _, _ := f.String("enclave")
	if e == "" {
		if len(enclaves) != 1 {
			return "", vaultBad("enclave is required: the server serves several Transit enclaves")
		}
		return enclaves[0], nil
	}
	if !slices.Contains(enclaves, e) {
		return "", vaultBad("enclave " + e + " is not served by a Transit mount")
	}
	return e, nil
}

// role returns the role of the path in enclave, or a 404.
func (v *vaultAPI) role(enclave, name string) (projections.AppRole, error) {
	var out *projections.AppRole
	v.s.proj.View(func(st *projections.State) {
		if e := st.Enclaves[enclave]; e != nil && e.AppRoles[name] != nil {
			c := *e.AppRoles[name]
			out = &c
		}
	})
	if out == nil {
		return projections.AppRole{}, errVaultNotFound
	}
	return *out, nil
}

// roleRequest reads the role name and enclave of an AppRole management
// request, and checks that the caller is an Admin of the enclave.
func (v *vaultAPI) roleRequest(r *http.Request, in routeReq) (transit.Fields, string, string, error) {
	f, err := fields(r, in)
	if err != nil {
		return nil, "", "", err
	}
	name := r.PathValue("role")
	if !validRoleName(name) {
		return nil, "", "", errUnsupportedPath
	}
	enclave, err := v.roleEnclave(f)
	if err != nil {
		return nil, "", "", err
	}
	v.s.proj.View(func(st *projections.State) { err = adminCheck(in.identity, enclave)(st) })
	if err != nil {
		return nil, "", "", err
	}
	return f, name, enclave, nil
}

// validRoleName reports whether s can be a role name (a ledger name).
func validRoleName(s string) bool { return ledger.ValidName(s) }

// POST auth/approle/role/{role} {identity, token_ttl, enclave}.
func (v *vaultAPI) roleSet(w http.ResponseWriter, r *http.Request, in routeReq) {
	f, name, enclave, err := v.roleRequest(r, in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	old, err := v.role(enclave, name)
	cmd := commands.SetAppRole{Enclave: enclave, Role: name, RoleID: old.RoleID, Identity: old.Identity, TokenTTL: old.TokenTTL}
	if err != nil {
		cmd.RoleID = transit.RequestID()
	}
	if id, ok, _ := f.String("identity"); ok {
		cmd.Identity = id
	}
	if cmd.Identity == "" {
		v.fail(w, r, vaultBad("missing identity: the h1: identity the role's logins act as"))
		return
	}
	if d, ok, err := f.Duration("token_ttl"); err != nil {
		v.fail(w, r, vaultBad(err.Error()))
		return
	} else if ok {
		cmd.TokenTTL = d.Truncate(time.Second)
	}
	if _, err := v.s.h.Execute(in.ctx, in.identity, "", commands.Checked{Command: cmd, Check: adminCheck(in.identity, enclave)}); err != nil {
		v.fail(w, r, err)
		return
	}
	noContent(w)
}

// GET auth/approle/role/{role}/role-id.
func (v *vaultAPI) roleID(w http.ResponseWriter, r *http.Request, in routeReq) {
	_, name, enclave, err := v.roleRequest(r, in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	role, err := v.role(enclave, name)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	v.reply(w, map[string]any{"role_id": role.RoleID})
}

// POST auth/approle/role/{role}/secret-id: a new secret id, shown once.
func (v *vaultAPI) roleSecretID(w http.ResponseWriter, r *http.Request, in routeReq) {
	_, name, enclave, err := v.roleRequest(r, in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	secret, h := newSecret("")
	accessor := transit.RequestID()
	cmd := commands.AddAppRoleSecretID{Enclave: enclave, Role: name, Accessor: accessor, Hash: h}
	if _, err := v.s.h.Execute(in.ctx, in.identity, "", commands.Checked{Command: cmd, Check: adminCheck(in.identity, enclave)}); err != nil {
		v.fail(w, r, err)
		return
	}
	v.reply(w, map[string]any{"secret_id": secret, "secret_id_accessor": accessor, "secret_id_ttl": 0, "secret_id_num_uses": 0})
}

// DELETE auth/approle/role/{role}.
func (v *vaultAPI) roleDelete(w http.ResponseWriter, r *http.Request, in routeReq) {
	_, name, enclave, err := v.roleRequest(r, in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	cmd := commands.DeleteAppRole{Enclave: enclave, Role: name}
	if _, err := v.s.h.Execute(in.ctx, in.identity, "", commands.Checked{Command: cmd, Check: adminCheck(in.identity, enclave)}); err != nil {
		v.fail(w, r, err)
		return
	}
	noContent(w)
}
