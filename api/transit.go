package api

// The Vault/OpenBao Transit API (README.md, "Vault Transit API"), served
// next to the kms API on the same listener for every mount of
// Config.TransitMounts, so that Transit clients (SeaweedFS, sops, RustFS,
// Kubernetes KMS plugins, the vault CLI) use kmsledger keys.
//
// The routes are rows of the server's route table (routes.go), built by
// transitRoutes: the router checks the caller, the key name and access,
// and reads the body, before a handler runs; only the caller comes from a
// token (X-Vault-Token or "Authorization: Bearer") instead of the client
// certificate, and errors are Vault's {"errors": [...]}.
//
// Tokens. A kms API key ("k1:…", "k2:…") is a token: its identity is that
// of the key's certificate, so an identity needs nothing new to call
// Transit. Access is then decided by the one evaluator (authorize) in the
// mount's enclave, with these commands:
//
//	keys/NAME (create), keys/NAME/rotate, keys/NAME/config   KEY:CREATE
//	keys/NAME (read)                                        KEY:STATUS
//	keys (list)                                             KEY:LIST
//	keys/NAME (delete; needs deletion_allowed)              KEY:DELETE
//	encrypt/NAME                                            KEY:ENCRYPT (+ KEY:CREATE to create a missing key)
//	decrypt/NAME                                            KEY:DECRYPT
//	rewrap/NAME                                             KEY:DECRYPT and KEY:ENCRYPT
//	datakey/{plaintext,wrapped}/NAME                        KEY:GENERATE
//	hmac/NAME, verify/NAME                                  KEY:MAC
//	random, hash, config/keys (read)                        any identity of the enclave
//
// Keys are the enclave's keys: a key created over Transit is a kmsledger
// key (AES256 for aes256-gcm96, ChaCha20 for chacha20-poly1305) that the
// kms API, the KES API and the CLI see, and "vault:vN:" names its version
// N. The Transit options kmsledger keys lack (derived, deletion_allowed,
// minimum versions) are key.transit_configured.v1 events.

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kmsledger/kmsledger/api/transit"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// Limits of the Transit API.
const (
	// transitMaxBody bounds a request body: a batch of 1000 items of
	// 32-byte data keys with contexts is about 200 KiB.
	transitMaxBody = 1 << 20
	// transitMaxBatch bounds batch_input.
	transitMaxBatch = 1000
	// transitMaxRandom is the most bytes random returns (Vault's bound).
	transitMaxRandom = 128 << 10
	transitTimeout   = requestTimeout
)

// DefaultTransitMount is the mount path Transit clients use unless told
// otherwise.
const DefaultTransitMount = "transit"

// reservedMounts are first path segments the other APIs use: no Transit
// mount may start with one.
var reservedMounts = map[string]bool{
	"kms": true, "admin": true, "ledger": true, "health": true, "sys": true, "auth": true,
	"key": true, "policy": true, "identity": true, "status": true, "metrics": true, "api": true,
	"ready": true, "log": true,
}

// ValidTransitMount reports whether m can be a Transit mount path: one or
// more segments of [A-Za-z0-9_-] joined by "/", the first not used by
// another API.
func ValidTransitMount(m string) bool {
	segs := strings.Split(m, "/")
	if reservedMounts[segs[0]] {
		return false
	}
	for _, s := range segs {
		if !ledger.ValidName(s) {
			return false
		}
	}
	return true
}

// vaultAPI is a row's Transit side: the mount ("" for the sys and auth
// rows) and the enclave it serves.
type vaultAPI struct {
	s       *Server
	mount   string
	enclave string
	tokens  *tokenCache
}

// transitRoutes returns the Transit rows of the route table: the sys and
// auth rows once, and the rows of every mount.
func (s *Server) transitRoutes() []route {
	mounts := s.cfg.TransitMounts
	if len(mounts) == 0 {
		return nil
	}
	tokens := &tokenCache{m: map[[32]byte]string{}}
	sys := &vaultAPI{s: s, tokens: tokens}
	row := func(v *vaultAPI, pattern string, a access, arg kesArg, maxBody int64, h func(*vaultAPI, http.ResponseWriter, *http.Request, routeReq), cmds ...wire.Command) route {
		return route{pattern: pattern, access: a, cmds: cmds, arg: arg, enclave: v.enclave, maxBody: maxBody, timeout: transitTimeout,
			vault: v, handle: func(w http.ResponseWriter, r *http.Request, in routeReq) { h(v, w, r, in) }}
	}
	writes := func(v *vaultAPI, path string, a access, arg kesArg, h func(*vaultAPI, http.ResponseWriter, *http.Request, routeReq), cmds ...wire.Command) []route {
		return []route{row(v, "POST "+path, a, arg, transitMaxBody, h, cmds...), row(v, "PUT "+path, a, arg, transitMaxBody, h, cmds...)}
	}
	rows := []route{
		row(sys, "GET /v1/sys/health", accessOpen, argNone, 0, (*vaultAPI).healthNoAuth),
		row(sys, "GET /v1/sys/seal-status", accessOpen, argNone, 0, (*vaultAPI).sealStatusNoAuth),
		row(sys, "GET /v1/sys/init", accessOpen, argNone, 0, (*vaultAPI).initNoAuth),
		row(sys, "GET /v1/auth/token/lookup-self", accessIdentity, argNone, 0, (*vaultAPI).lookupSelf),
		// Any path no API serves: Vault's answer to Vault clients.
		row(sys, "/v1/", accessOpen, argNone, 0, (*vaultAPI).noHandlerNoAuth),
	}
	rows = append(rows, writes(sys, "/v1/sys/mounts/{path...}", accessIdentity, argNone, (*vaultAPI).mountEnable)...)
	for _, w := range [][]route{
		writes(sys, "/v1/auth/token/renew-self", accessIdentity, argNone, (*vaultAPI).renewSelf),
		writes(sys, "/v1/auth/token/revoke-self", accessIdentity, argNone, (*vaultAPI).revokeSelf),
		writes(sys, "/v1/auth/approle/login", accessOpen, argNone, (*vaultAPI).approleLoginNoAuth),
		writes(sys, "/v1/auth/cert/login", accessOpen, argNone, (*vaultAPI).certLoginNoAuth),
		writes(sys, "/v1/auth/approle/role/{role}", accessIdentity, argNone, (*vaultAPI).roleSet),
		writes(sys, "/v1/auth/approle/role/{role}/secret-id", accessIdentity, argNone, (*vaultAPI).roleSecretID),
		{row(sys, "GET /v1/auth/approle/role/{role}/role-id", accessIdentity, argNone, 0, (*vaultAPI).roleID),
			row(sys, "DELETE /v1/auth/approle/role/{role}", accessIdentity, argNone, 0, (*vaultAPI).roleDelete)},
	} {
		rows = append(rows, w...)
	}
	for _, m := range slices.Sorted(maps.Keys(mounts)) {
		if !ValidTransitMount(m) {
			s.log.Error("transit mount not served: invalid path", "mount", m)
			continue
		}
		v := &vaultAPI{s: s, mount: m, enclave: mounts[m], tokens: tokens}
		base := "/v1/" + m + "/"
		rows = append(rows,
			row(v, "GET "+base+"keys/{name}", accessCommand, argPathName, 0, (*vaultAPI).readKey, wire.CmdKeyStatus),
			row(v, "DELETE "+base+"keys/{name}", accessCommand, argPathName, 0, (*vaultAPI).deleteKey, wire.CmdKeyDelete),
			row(v, "GET "+base+"keys", accessCommand, argNone, 0, (*vaultAPI).listKeys, wire.CmdKeyList),
			row(v, "GET "+base+"keys/{$}", accessCommand, argNone, 0, (*vaultAPI).listKeys, wire.CmdKeyList),
			row(v, "LIST "+base+"keys", accessCommand, argNone, 0, (*vaultAPI).listKeys, wire.CmdKeyList),
			row(v, "LIST "+base+"keys/{$}", accessCommand, argNone, 0, (*vaultAPI).listKeys, wire.CmdKeyList),
			row(v, "GET "+base+"config/keys", accessMember, argNone, 0, (*vaultAPI).readConfig),
			// Anything else under the mount: 403 without a valid token,
			// 404 "unsupported path" with one.
			row(v, base, accessMember, argNone, 0, (*vaultAPI).unsupported),
		)
		for _, w := range [][]route{
			writes(v, base+"keys/{name}", accessCommand, argPathName, (*vaultAPI).createKey, wire.CmdKeyCreate),
			writes(v, base+"keys/{name}/config", accessCommand, argPathName, (*vaultAPI).configKey, wire.CmdKeyCreate),
			writes(v, base+"keys/{name}/rotate", accessCommand, argPathName, (*vaultAPI).rotateKey, wire.CmdKeyCreate),
			writes(v, base+"config/keys", accessAdmin, argNone, (*vaultAPI).writeConfig),
			writes(v, base+"encrypt/{name}", accessCommand, argPathName, (*vaultAPI).encrypt, wire.CmdKeyEncrypt),
			writes(v, base+"decrypt/{name}", accessCommand, argPathName, (*vaultAPI).decrypt, wire.CmdKeyDecrypt),
			writes(v, base+"rewrap/{name}", accessCommand, argPathName, (*vaultAPI).rewrap, wire.CmdKeyDecrypt, wire.CmdKeyEncrypt),
			writes(v, base+"datakey/{kind}/{name}", accessCommand, argPathName, (*vaultAPI).datakey, wire.CmdKeyGenerate),
			writes(v, base+"hmac/{name}", accessCommand, argPathName, (*vaultAPI).hmac, wire.CmdKeyMAC),
			writes(v, base+"hmac/{name}/{alg}", accessCommand, argPathName, (*vaultAPI).hmac, wire.CmdKeyMAC),
			writes(v, base+"verify/{name}", accessCommand, argPathName, (*vaultAPI).verify, wire.CmdKeyMAC),
			writes(v, base+"verify/{name}/{alg}", accessCommand, argPathName, (*vaultAPI).verify, wire.CmdKeyMAC),
			writes(v, base+"random", accessMember, argNone, (*vaultAPI).random),
			writes(v, base+"random/{a}", accessMember, argNone, (*vaultAPI).random),
			writes(v, base+"random/{a}/{b}", accessMember, argNone, (*vaultAPI).random),
			writes(v, base+"hash", accessMember, argNone, (*vaultAPI).hash),
			writes(v, base+"hash/{alg}", accessMember, argNone, (*vaultAPI).hash),
		} {
			rows = append(rows, w...)
		}
	}
	return rows
}

// caller returns the identity of the request's token ("" for none or an
// invalid one) and records it as the request's identity and enclave in
// the audit record. A namespace other than the root one is refused.
func (v *vaultAPI) caller(w http.ResponseWriter, r *http.Request) (string, error) {
	if ns := strings.Trim(r.Header.Get("X-Vault-Namespace"), "/"); ns != "" && ns != "root" {
		return "", errPermission
	}
	tok := r.Header.Get("X-Vault-Token")
	if tok == "" {
		if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			tok = strings.TrimSpace(b)
		}
	}
	id := v.identityOf(tok)
	if id != "" && v.mount == "" && !v.known(id) {
		id = "" // the sys and token rows: a key of no identity is no token
	}
	if info := auditFrom(w); info != nil {
		info.identity = id
		if v.enclave != "" {
			info.enclave = v.enclave
		}
	}
	return id, nil
}

// known reports whether id is root or an identity of a mount's enclave.
func (v *vaultAPI) known(id string) bool {
	ok := false
	v.s.proj.View(func(st *projections.State) {
		if id == st.RootIdentity {
			ok = true
			return
		}
		for _, enclave := range v.s.cfg.TransitMounts {
			if e := st.Enclaves[enclave]; e != nil && e.Identities[id] != nil {
				ok = true
				return
			}
		}
	})
	return ok
}

// identityOf returns the identity of a token, "" if it is none.
func (v *vaultAPI) identityOf(tok string) string {
	if tok == "" || len(tok) > 256 {
		return ""
	}
	if strings.HasPrefix(tok, "k1:") || strings.HasPrefix(tok, "k2:") {
		return v.tokens.apiKey(tok)
	}
	if _, t := v.issued(tok); t != nil {
		return t.Identity
	}
	return ""
}

// tokenCache maps the SHA-256 of API-key tokens to their identity, so a
// client sending its key on every request costs one hash, not a key
// derivation. It holds no token in clear.
type tokenCache struct {
	mu sync.Mutex
	m  map[[32]byte]string
}

// maxCachedTokens bounds tokenCache: past it, the cache starts over.
const maxCachedTokens = 4096

func (c *tokenCache) apiKey(tok string) string {
	h := sha256.Sum256([]byte(tok))
	c.mu.Lock()
	id, ok := c.m[h]
	c.mu.Unlock()
	if ok {
		return id
	}
	key, err := wire.ParseAPIKey(tok)
	if err != nil {
		return ""
	}
	if id, err = wire.Identity(key.Public()); err != nil {
		return ""
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedTokens {
		clear(c.m)
	}
	c.m[h] = id
	c.mu.Unlock()
	return id
}

// Answers.

// reply writes a 200 envelope with data and warnings.
func (v *vaultAPI) reply(w http.ResponseWriter, data any, warnings ...string) {
	resp := transit.NewResponse(data)
	if v.mount != "" {
		resp.MountType = "transit"
	}
	resp.Warnings = warnings
	v.writeJSON(w, http.StatusOK, resp)
}

func (v *vaultAPI) writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		status, b = http.StatusInternalServerError, transit.ErrorBody("internal error")
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

// noContent answers 204.
func noContent(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }

// vaultError is a Transit client error: status and Vault's message.
type vaultError struct {
	status int
	msg    string
}

func (e *vaultError) Error() string { return "api: transit: " + e.msg }

func vaultBad(msg string) error { return &vaultError{http.StatusBadRequest, msg} }

// errVaultNotFound is the answer to a read of something missing: 404 with
// an empty error list.
var errVaultNotFound = &vaultError{http.StatusNotFound, ""}

// errUnsupportedPath is the answer to a path under a mount that no
// endpoint serves, and to a key name kmsledger cannot have.
var errUnsupportedPath = &vaultError{http.StatusNotFound, "unsupported path"}

// transitErrorTable maps domain errors to Vault's statuses and words;
// anything not here goes through errorTable with a 4xx kept as is.
var transitErrorTable = []errorEntry{
	{errPermission, http.StatusForbidden, "permission denied"},
	{projections.ErrKeyNotFound, http.StatusBadRequest, "encryption key not found"},
	{projections.ErrEnclaveNotFound, http.StatusBadRequest, "encryption key not found"},
	{projections.ErrKeyDisabled, http.StatusBadRequest, "key is disabled"},
	{projections.ErrKeyPendingDeletion, http.StatusBadRequest, "key is disabled: pending deletion"},
	{hsm.ErrDecrypt, http.StatusBadRequest, "cipher: message authentication failed"},
	{hsm.ErrTransitLength, http.StatusBadRequest, "invalid ciphertext length"},
	{commands.ErrKeyTombstoned, http.StatusBadRequest, "key was destroyed: its name stays reserved until an admin releases it"},
}

// fail answers err in Vault's shape. Internal errors are logged and
// answered 500 "internal error".
func (v *vaultAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ve *vaultError
	if errors.As(err, &ve) {
		if ve.msg == "" {
			writeRaw(w, ve.status, transit.ErrorBody())
			return
		}
		writeRaw(w, ve.status, transit.ErrorBody(ve.msg))
		return
	}
	status, msg := resolveError(err, transitErrorTable, errorTable)
	if status == http.StatusInternalServerError {
		v.s.log.Error("request failed", "method", r.Method, "route", r.Pattern, "path", logPath(r), "remote", r.RemoteAddr, "err", err)
	}
	writeRaw(w, status, transit.ErrorBody(msg))
}

// fields parses the request's body and query (transit.Parse).
func fields(r *http.Request, in routeReq) (transit.Fields, error) {
	f, err := transit.Parse(in.body, r.URL.Query())
	if err != nil {
		return nil, vaultBad(err.Error())
	}
	return f, nil
}

// keyName returns the {name} path value if kmsledger keys can have it;
// any other name is a path no endpoint serves.
func keyName(in routeReq) (string, error) {
	if !ledger.ValidName(in.arg) {
		return "", errUnsupportedPath
	}
	return in.arg, nil
}

// noHandlerNoAuth answers a path under no mount: for a Vault client
// (X-Vault-Request or a token) 403 without a valid token, else 404
// "no handler for route"; for anyone else net/http's plain 404.
func (v *vaultAPI) noHandlerNoAuth(w http.ResponseWriter, r *http.Request, _ routeReq) {
	tok := requestToken(r)
	if r.Header.Get("X-Vault-Request") == "" && tok == "" {
		http.NotFound(w, r)
		return
	}
	if id := v.identityOf(tok); id == "" || !v.known(id) {
		v.fail(w, r, errPermission)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	if len(path) > 200 {
		path = path[:200]
	}
	v.fail(w, r, &vaultError{http.StatusNotFound, "no handler for route " + strconv.Quote(path) + ". route entry not found."})
}

func (v *vaultAPI) unsupported(w http.ResponseWriter, r *http.Request, _ routeReq) {
	v.fail(w, r, errUnsupportedPath)
}

// isList reports whether a GET is a list (?list=true); an unparsable
// value is a client error.
func isListQuery(r *http.Request) (bool, error) {
	q := r.URL.Query().Get("list")
	if q == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(q)
	if err != nil {
		return false, vaultBad("invalid value for 'list': " + q)
	}
	return b, nil
}

// unixTime is t in whole seconds.
func unixTime(t time.Time) int64 { return t.Unix() }
