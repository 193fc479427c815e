package api

// The KES HTTP API (spec kes.md §1–§2), served next to the kms API on the
// same listener when Config.KESEnclave is set, so that an unmodified MinIO
// configured for KES (MINIO_KMS_KES_ENDPOINT, MINIO_KMS_KES_KEY_NAME and a
// kes:v1 API key or a client certificate) keeps working.
//
// Identity. A KES identity is hex(SHA-256(SPKI of the client certificate));
// the kmsledger identity of the same certificate is "h1:" ‖ base64url of the
// same 32 bytes. A KES caller is authorised as that h1: identity in the KES
// enclave with authorize(): root may do everything, an Admin of the enclave
// everything in it, a User what its policy allows. Paths map to commands:
//
//	/v1/key/create/NAME       KEY:CREATE     /v1/key/generate/NAME  KEY:GENERATE
//	/v1/key/import/NAME       KEY:IMPORT     /v1/key/encrypt/NAME   KEY:ENCRYPT
//	/v1/key/describe/NAME     KEY:STATUS     /v1/key/decrypt/NAME   KEY:DECRYPT
//	/v1/key/delete/NAME       KEY:DELETE     /v1/key/hmac/NAME      KEY:MAC
//	/v1/key/list/PATTERN      KEY:LIST       /v1/key/bulk/decrypt/NAME KEY:DECRYPT (KES ≤ v0.22)
//	/v1/policy/describe/NAME  POLICY:STATUS  /v1/identity/describe/ID IDENTITY:STATUS
//	/v1/policy/read/NAME      POLICY:GET     /v1/identity/list/PATTERN IDENTITY:LIST
//	/v1/policy/list/PATTERN   POLICY:LIST
//
// The resource is the key or policy name, or the h1: form of the identity.
// A key name that only older KES key stores allowed ("my.key") reaches the
// key the migration imported it as (kesLegacyName).
// /v1/status, /v1/metrics, /v1/api and /v1/identity/self/describe are open
// to every identity of the enclave (and root); /version and /v1/ready need
// no certificate (they reveal nothing but liveness).
//
// Deviations from KES, all deliberate: list patterns are prefixes (a final
// "*" is ignored, KES matches only a lone "*"); a User allowed a list
// command may list with any prefix; self/describe works for every identity
// (KES answers 404 for non-admins) and returns the policy as "policy"
// (name), "allow" and "deny", the shape the KES SDK decodes; the log
// streams /v1/log/{error,audit} are not served.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// Limits of the KES API (kes.md §1).
const (
	kesMaxBody     = 1_000_000
	kesTimeout     = 15 * time.Second
	kesInfoTimeout = 10 * time.Second // /version and /v1/api
)

// kesAccess says who may call a route.
type kesAccess int

const (
	kesNoAuth  kesAccess = iota // no client certificate needed
	kesMember                   // root or any identity of the enclave
	kesCommand                  // authorize(cmd, resource)
)

// kesArg says what follows a route's path.
type kesArg int

const (
	argNone     kesArg = iota
	argName            // a key or policy name
	argKey             // the name of an existing key; legacy names are mapped
	argPattern         // a list prefix, optionally ending in "*"; may be empty
	argIdentity        // a KES (hex) or kmsledger (h1:) identity
)

// kesRoute is one row of the KES route table.
type kesRoute struct {
	method  string // declared method; where it is PUT, POST is accepted too
	path    string // API path as /v1/api lists it; argument routes end in "/"
	arg     kesArg
	maxBody int64
	timeout time.Duration
	access  kesAccess
	cmd     wire.Command // for kesCommand
	handle  func(k *kesAPI, w http.ResponseWriter, r *http.Request, req *kesRequest)
}

// kesRequest is an authenticated, validated KES request.
type kesRequest struct {
	ctx      context.Context
	identity string // h1: identity of the caller ("" on kesNoAuth routes)
	arg      string // the path argument; for argIdentity its h1: form
	body     []byte
}

// kesAPI serves the KES API for one enclave and keeps its metrics.
type kesAPI struct {
	s       *Server
	enclave string
	start   time.Time
	metrics kesMetrics
}

// kesRoutes returns the route table in the order /v1/api lists it.
// /version is served by the kms API's handler (its JSON carries "version"
// and "commit", which is all KES clients read) and only listed here.
func kesRoutes() []kesRoute {
	const get, put, del = http.MethodGet, http.MethodPut, http.MethodDelete
	return []kesRoute{
		{get, "/version", argNone, 0, kesInfoTimeout, kesNoAuth, 0, nil},
		{get, "/v1/ready", argNone, 0, kesTimeout, kesNoAuth, 0, (*kesAPI).ready},
		{get, "/v1/status", argNone, 0, kesTimeout, kesMember, 0, (*kesAPI).status},
		{get, "/v1/metrics", argNone, 0, kesTimeout, kesMember, 0, (*kesAPI).metricsText},
		{get, "/v1/api", argNone, 0, kesInfoTimeout, kesMember, 0, (*kesAPI).apis},
		{put, "/v1/key/create/", argName, 0, kesTimeout, kesCommand, wire.CmdKeyCreate, (*kesAPI).createKey},
		{put, "/v1/key/import/", argName, kesMaxBody, kesTimeout, kesCommand, wire.CmdKeyImport, (*kesAPI).importKey},
		{get, "/v1/key/describe/", argKey, 0, kesTimeout, kesCommand, wire.CmdKeyStatus, (*kesAPI).describeKey},
		{del, "/v1/key/delete/", argKey, 0, kesTimeout, kesCommand, wire.CmdKeyDelete, (*kesAPI).deleteKey},
		{get, "/v1/key/list/", argPattern, 0, kesTimeout, kesCommand, wire.CmdKeyList, (*kesAPI).listKeys},
		{put, "/v1/key/generate/", argKey, kesMaxBody, kesTimeout, kesCommand, wire.CmdKeyGenerate, (*kesAPI).generate},
		{put, "/v1/key/encrypt/", argKey, kesMaxBody, kesTimeout, kesCommand, wire.CmdKeyEncrypt, (*kesAPI).encrypt},
		{put, "/v1/key/decrypt/", argKey, kesMaxBody, kesTimeout, kesCommand, wire.CmdKeyDecrypt, (*kesAPI).decrypt},
		{put, "/v1/key/bulk/decrypt/", argKey, kesMaxBody, kesTimeout, kesCommand, wire.CmdKeyDecrypt, (*kesAPI).bulkDecrypt},
		{put, "/v1/key/hmac/", argKey, kesMaxBody, kesTimeout, kesCommand, wire.CmdKeyMAC, (*kesAPI).hmac},
		{get, "/v1/policy/describe/", argName, 0, kesTimeout, kesCommand, wire.CmdPolicyStatus, (*kesAPI).describePolicy},
		{get, "/v1/policy/read/", argName, 0, kesTimeout, kesCommand, wire.CmdPolicyGet, (*kesAPI).readPolicy},
		{get, "/v1/policy/list/", argPattern, 0, kesTimeout, kesCommand, wire.CmdPolicyList, (*kesAPI).listPolicies},
		{get, "/v1/identity/describe/", argIdentity, 0, kesTimeout, kesCommand, wire.CmdIdentityStatus, (*kesAPI).describeIdentity},
		{get, "/v1/identity/list/", argPattern, 0, kesTimeout, kesCommand, wire.CmdIdentityList, (*kesAPI).listIdentities},
		{get, "/v1/identity/self/describe", argNone, 0, kesTimeout, kesMember, 0, (*kesAPI).describeSelf},
	}
}

// kesRoutes registers the KES API on mux (spec kes.md §1).
func (s *Server) kesRoutes(mux *http.ServeMux) {
	k := &kesAPI{s: s, enclave: s.cfg.KESEnclave, start: time.Now()}
	for _, rt := range kesRoutes() {
		if rt.handle == nil {
			continue
		}
		h := k.handler(rt)
		if rt.arg == argNone {
			mux.Handle(rt.path, h)
			continue
		}
		mux.Handle(rt.path+"{arg...}", h)
		if rt.arg == argPattern {
			// The KES SDK lists everything as ".../list" (path.Join drops
			// the empty prefix and the slash).
			mux.Handle(strings.TrimSuffix(rt.path, "/"), h)
		}
	}
}

// handler wraps a route: metrics, method, timeout, authentication,
// argument validation, authorisation, body limit, then the handler.
func (k *kesAPI) handler(rt kesRoute) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		k.metrics.active.Add(1)
		defer func() {
			k.metrics.active.Add(-1)
			k.metrics.observe(rec.status, time.Since(start))
		}()
		k.serve(rt, rec, r)
	})
}

func (k *kesAPI) serve(rt kesRoute, w http.ResponseWriter, r *http.Request) {
	if r.Method != rt.method && (rt.method != http.MethodPut || r.Method != http.MethodPost) {
		w.Header().Set("Accept", rt.method)
		k.fail(w, r, &statusError{http.StatusMethodNotAllowed, "method not allowed"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), rt.timeout)
	defer cancel()
	req := &kesRequest{ctx: ctx, arg: r.PathValue("arg")}
	if rt.access != kesNoAuth {
		id, err := kesCaller(r)
		if err != nil {
			k.fail(w, r, err)
			return
		}
		req.identity = id
	}
	if err := req.validateArg(rt.arg); err != nil {
		k.fail(w, r, err)
		return
	}
	if err := k.authorize(rt, req); err != nil {
		k.fail(w, r, err)
		return
	}
	if rt.maxBody > 0 {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rt.maxBody))
		if err != nil {
			k.fail(w, r, err)
			return
		}
		req.body = b
		defer clear(b) // may hold plaintext or key material
	}
	rt.handle(k, w, r, req)
}

// kesCaller returns the h1: identity of the request's client: that of
// the first certificate presented, the one whose key the handshake proved
// (callerOf). KES took the single non-CA certificate of the chain, which
// let a chain [own CA certificate, certificate with anyone's public key]
// act as anyone; the KES errors for a missing certificate are kept.
func kesCaller(r *http.Request) (string, error) {
	if r.TLS == nil {
		return "", badRequest("insecure connection: TLS is required")
	}
	id := callerOf(r)
	if id == "" {
		return "", badRequest("tls: client certificate is required")
	}
	return id, nil
}

// validateArg checks the path argument and turns an identity argument into
// its h1: form.
func (req *kesRequest) validateArg(arg kesArg) error {
	switch arg {
	case argName, argKey:
		if ledger.ValidName(req.arg) {
			return nil
		}
		if name, ok := kesLegacyName(req.arg); ok && arg == argKey {
			req.arg = name
			return nil
		}
		return badRequest("key name '%s' is empty, too long or contains invalid characters", req.arg)
	case argPattern:
		p := strings.TrimSuffix(req.arg, "*")
		if p != "" && !ledger.ValidName(p) {
			return badRequest("pattern '%s' is too long or contains invalid characters", req.arg)
		}
	case argIdentity:
		id, ok := kesToH1(req.arg)
		if !ok {
			return badRequest("identity '%s' is invalid: want 64 hex characters", req.arg)
		}
		req.arg = id
	}
	return nil
}

// authorize applies the route's access rule to the caller.
func (k *kesAPI) authorize(rt kesRoute, req *kesRequest) error {
	var err error
	switch rt.access {
	case kesCommand:
		resource := req.arg
		if rt.arg == argPattern {
			resource = ""
		}
		k.s.proj.View(func(st *projections.State) {
			err = authorize(st, req.identity, k.enclave, rt.cmd, resource)
		})
	case kesMember:
		k.s.proj.View(func(st *projections.State) {
			if req.identity == st.RootIdentity {
				return
			}
			if e := st.Enclaves[k.enclave]; e == nil || e.Identities[req.identity] == nil {
				err = errPermission
			}
		})
	}
	return err
}

// view runs f on the KES enclave under the projection's read lock; on a
// "not found" it catches up with the ledger head and runs f again.
func (k *kesAPI) view(ctx context.Context, f func(st *projections.State, e *projections.Enclave) error) error {
	run := func() (err error) {
		k.s.proj.View(func(st *projections.State) {
			e := st.Enclaves[k.enclave]
			if e == nil {
				err = commands.ErrEnclaveNotFound
				return
			}
			err = f(st, e)
		})
		return err
	}
	err := run()
	if isNotFound(err) {
		if cerr := k.s.proj.CatchUp(ctx); cerr != nil {
			return cerr
		}
		err = run()
	}
	return err
}

// kesLegacyName maps a key name that older KES key stores could hold but
// kmsledger names cannot (e.g. "my.key") to the name `kmsledger migrate`
// imported it under (migrate/names.go, tested against migrate.MapName):
//
//	sanitize(name)[:71] ‖ "-" ‖ hex(SHA-256(name))[:8]
//	sanitize: every byte outside [A-Za-z0-9_-] becomes '_'
//
// so clients keep using the old name for existing keys; new keys still
// need a valid name.
func kesLegacyName(name string) (string, bool) {
	if name == "" || len(name) > 1024 {
		return "", false
	}
	b := []byte(name)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	b = b[:min(len(b), 71)]
	sum := sha256.Sum256([]byte(name))
	return string(b) + "-" + hex.EncodeToString(sum[:4]), true
}

// kesToH1 converts a KES identity (64 hex digits) to the h1: form; an h1:
// identity is returned unchanged.
func kesToH1(id string) (string, bool) {
	if wire.ValidIdentity(id) {
		return id, true
	}
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != sha256.Size {
		return "", false
	}
	return "h1:" + base64.RawURLEncoding.EncodeToString(b), true
}

// h1ToKES converts an h1: identity to the KES (lowercase hex) form; any
// other string is returned unchanged.
func h1ToKES(id string) string {
	enc, ok := strings.CutPrefix(id, "h1:")
	if !ok {
		return id
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(b) != sha256.Size {
		return id
	}
	return hex.EncodeToString(b)
}

// errKESBody is the answer to a request body that is not the JSON the
// route expects.
var errKESBody = &statusError{http.StatusBadRequest, "invalid request body"}

// kesCipherType maps a KES cipher or algorithm name to a key type.
func kesCipherType(cipher string) (string, error) {
	switch cipher {
	case "AES256", "AES256-GCM_SHA256", "":
		return "AES256", nil
	case "ChaCha20", "XCHACHA20-POLY1305":
		return "ChaCha20", nil
	}
	return "", &statusError{http.StatusNotAcceptable, fmt.Sprintf("algorithm '%s' is not supported", cipher)}
}
