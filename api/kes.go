package api

// The KES HTTP API (README.md, "Migrating from KES, and the KES API"), served next to the kms API on the
// same listener when Config.KESEnclave is set, so that an unmodified MinIO
// configured for KES (MINIO_KMS_KES_ENDPOINT, MINIO_KMS_KES_KEY_NAME and a
// kes:v1 API key or a client certificate) keeps working.
//
// The routes are rows of the server's route table (routes.go): the router
// checks the method, the caller, the path argument and access, and reads
// the body, before a handler runs.
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
// key the migration imported it as (kescompat.KeyName).
// /v1/status, /v1/metrics, /v1/api and /v1/identity/self/describe are open
// to every identity of the enclave (and root); /version and /v1/ready need
// no certificate (they reveal nothing but liveness).
//
// Deviations from KES, all deliberate: list patterns are prefixes (a final
// "*" is ignored, KES matches only a lone "*"); a User allowed a list
// command may list with any prefix; self/describe works for every identity
// (KES answers 404 for non-admins) and returns the policy as "policy"
// (name), "allow" and "deny", the shape the KES SDK decodes; the log
// streams /v1/log/{error,audit} are for the root identity only
// (debug_log.go); the caller is the first
// certificate the client presents, whatever follows it in the chain (KES
// takes the single non-CA certificate, which the handshake does not prove).

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/migrate/kescompat"
	"github.com/kmsledger/kmsledger/projections"
)

// Limits of the KES API (README.md, "Limits").
const (
	kesMaxBody     = 1_000_000
	kesTimeout     = 15 * time.Second
	kesInfoTimeout = 10 * time.Second // /version and /v1/api
)

// kesArg says what follows a route's path.
type kesArg int

const (
	argNone     kesArg = iota
	argName            // a key or policy name
	argKey             // the name of an existing key; legacy names are mapped
	argPattern         // a list prefix, optionally ending in "*"; may be empty
	argIdentity        // a KES (hex) or kmsledger (h1:) identity
	argPathName        // (kms and admin routes) the {name} path value, as given
)

// kesAPI serves the KES API for one enclave and keeps its metrics.
type kesAPI struct {
	s       *Server
	enclave string
	start   time.Time
	metrics kesMetrics
	routes  []route // kesRoutes, in the order /v1/api lists them
}

// kesRoutes returns the KES rows of the route table in the order /v1/api
// lists them. /version is served by the kms API's handler (its JSON
// carries "version" and "commit", which is all KES clients read) and only
// listed here.
func kesRoutes(k *kesAPI) []route {
	const get, put, del = http.MethodGet, http.MethodPut, http.MethodDelete
	type h = func(k *kesAPI, w http.ResponseWriter, r *http.Request, req *kesRequest)
	row := func(method, path string, arg kesArg, maxBody int64, timeout time.Duration, a access, cmd wire.Command, handle h) route {
		rt := route{method: method, path: path, arg: arg, maxBody: maxBody, timeout: timeout, access: a, enclave: k.enclave, kes: k}
		if cmd != 0 {
			rt.cmds = []wire.Command{cmd}
		}
		if handle != nil {
			rt.handle = func(w http.ResponseWriter, r *http.Request, in routeReq) { handle(k, w, r, &in) }
		}
		return rt
	}
	return []route{
		row(get, "/version", argNone, 0, kesInfoTimeout, accessOpen, 0, nil),
		row(get, "/v1/ready", argNone, 0, kesTimeout, accessOpen, 0, (*kesAPI).ready),
		row(get, "/v1/status", argNone, 0, kesTimeout, accessMember, 0, (*kesAPI).status),
		row(get, "/v1/metrics", argNone, 0, kesTimeout, accessMember, 0, (*kesAPI).metricsText),
		row(get, "/v1/api", argNone, 0, kesInfoTimeout, accessMember, 0, (*kesAPI).apis),
		row(put, "/v1/key/create/", argName, 0, kesTimeout, accessCommand, wire.CmdKeyCreate, (*kesAPI).createKey),
		row(put, "/v1/key/import/", argName, kesMaxBody, kesTimeout, accessCommand, wire.CmdKeyImport, (*kesAPI).importKey),
		row(get, "/v1/key/describe/", argKey, 0, kesTimeout, accessCommand, wire.CmdKeyStatus, (*kesAPI).describeKey),
		row(del, "/v1/key/delete/", argKey, 0, kesTimeout, accessCommand, wire.CmdKeyDelete, (*kesAPI).deleteKey),
		row(get, "/v1/key/list/", argPattern, 0, kesTimeout, accessCommand, wire.CmdKeyList, (*kesAPI).listKeys),
		row(put, "/v1/key/generate/", argKey, kesMaxBody, kesTimeout, accessCommand, wire.CmdKeyGenerate, (*kesAPI).generate),
		row(put, "/v1/key/encrypt/", argKey, kesMaxBody, kesTimeout, accessCommand, wire.CmdKeyEncrypt, (*kesAPI).encrypt),
		row(put, "/v1/key/decrypt/", argKey, kesMaxBody, kesTimeout, accessCommand, wire.CmdKeyDecrypt, (*kesAPI).decrypt),
		row(put, "/v1/key/bulk/decrypt/", argKey, kesMaxBody, kesTimeout, accessCommand, wire.CmdKeyDecrypt, (*kesAPI).bulkDecrypt),
		row(put, "/v1/key/hmac/", argKey, kesMaxBody, kesTimeout, accessCommand, wire.CmdKeyMAC, (*kesAPI).hmac),
		row(get, "/v1/policy/describe/", argName, 0, kesTimeout, accessCommand, wire.CmdPolicyStatus, (*kesAPI).describePolicy),
		row(get, "/v1/policy/read/", argName, 0, kesTimeout, accessCommand, wire.CmdPolicyGet, (*kesAPI).readPolicy),
		row(get, "/v1/policy/list/", argPattern, 0, kesTimeout, accessCommand, wire.CmdPolicyList, (*kesAPI).listPolicies),
		row(get, "/v1/identity/describe/", argIdentity, 0, kesTimeout, accessCommand, wire.CmdIdentityStatus, (*kesAPI).describeIdentity),
		row(get, "/v1/identity/list/", argPattern, 0, kesTimeout, accessCommand, wire.CmdIdentityList, (*kesAPI).listIdentities),
		row(get, "/v1/identity/self/describe", argNone, 0, kesTimeout, accessMember, 0, (*kesAPI).describeSelf),
		stream(row(get, "/v1/log/error", argNone, 0, streamTimeout, accessRoot, 0, (*kesAPI).errorLog)),
		stream(row(get, "/v1/log/audit", argNone, 0, streamTimeout, accessRoot, 0, (*kesAPI).auditLog)),
	}
}

// stream marks rt as a log stream (debug_log.go).
func stream(rt route) route {
	rt.stream = true
	return rt
}

// muxRoutes returns the KES rows as ServeMux routes: argument routes end
// in "{arg...}"; the method is checked by the router (KES's 405).
func (k *kesAPI) muxRoutes() []route {
	var out []route
	for _, rt := range k.routes {
		if rt.handle == nil {
			continue
		}
		if rt.arg == argNone {
			rt.pattern = rt.path
			out = append(out, rt)
			continue
		}
		rt.pattern = rt.path + "{arg...}"
		out = append(out, rt)
		if rt.arg == argPattern {
			// The KES SDK lists everything as ".../list" (path.Join drops
			// the empty prefix and the slash).
			rt.pattern = strings.TrimSuffix(rt.path, "/")
			out = append(out, rt)
		}
	}
	return out
}

// begin and end count a KES request in the metrics.
func (k *kesAPI) begin(w http.ResponseWriter) *statusRecorder {
	k.metrics.active.Add(1)
	return &statusRecorder{ResponseWriter: w, status: http.StatusOK, start: time.Now()}
}

func (k *kesAPI) end(rec *statusRecorder) {
	k.metrics.active.Add(-1)
	k.metrics.observe(rec.status, time.Since(rec.start))
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
		if arg == argKey && len(req.arg) <= kesMaxLegacyName {
			if name, err := kescompat.KeyName(req.arg); err == nil {
				req.arg = name
				return nil
			}
		}
		return badRequest("key name '%s' is empty, too long or contains invalid characters", req.arg)
	case argPattern:
		p := strings.TrimSuffix(req.arg, "*")
		if p != "" && !ledger.ValidName(p) {
			return badRequest("pattern '%s' is too long or contains invalid characters", req.arg)
		}
	case argIdentity:
		id, ok := kescompat.ParseIdentity(req.arg)
		if !ok {
			return badRequest("identity '%s' is invalid: want 64 hex characters", req.arg)
		}
		req.arg = id
	}
	return nil
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

// kesMaxLegacyName bounds the names the KES API maps to the name of a
// migrated key (kescompat.KeyName), so that no request hashes more.
const kesMaxLegacyName = 1024

// errKESBody is the answer to a request body that is not the JSON the
// route expects.
var errKESBody = &statusError{http.StatusBadRequest, "invalid request body"}

// kesCipherType maps a KES cipher or algorithm name to a key type
// (kescompat.KeyType); any other name is KES's 406.
func kesCipherType(cipher string) (string, error) {
	if typ, ok := kescompat.KeyType(cipher); ok {
		return typ, nil
	}
	return "", &statusError{http.StatusNotAcceptable, fmt.Sprintf("algorithm '%s' is not supported", cipher)}
}
