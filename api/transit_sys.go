package api

// The sys and token endpoints of the Transit API (transit.go) that
// Transit clients call besides the engine: health, seal status, init,
// mount enabling (setup scripts), token lookup and renewal.

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// vaultVersion is the Vault API version kmsledger answers as.
const vaultVersion = "1.21.0"

// GET|HEAD sys/health: 200 while serving; the "…code" query parameters
// choose the status (the Go client asks for 299 for every state).
func (v *vaultAPI) healthNoAuth(w http.ResponseWriter, r *http.Request, in routeReq) {
	status := http.StatusOK
	if s := r.URL.Query().Get("activecode"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 || n > 599 {
			v.fail(w, r, vaultBad("unable to parse activecode"))
			return
		}
		status = n
	}
	for _, p := range []string{"standbycode", "drsecondarycode", "performancestandbycode", "sealedcode", "uninitcode", "removedcode", "haunhealthycode"} {
		if s := r.URL.Query().Get(p); s != "" {
			if n, err := strconv.Atoi(s); err != nil || n < 100 || n > 599 {
				v.fail(w, r, vaultBad("unable to parse "+p))
				return
			}
		}
	}
	body := map[string]any{
		"initialized": true, "sealed": false, "standby": false, "performance_standby": false,
		"replication_performance_mode": "disabled", "replication_dr_mode": "disabled",
		"server_time_utc": time.Now().Unix(), "version": vaultVersion, "cluster_name": "kmsledger", "cluster_id": "",
		"enterprise": false,
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	v.writeJSON(w, status, body)
}

// GET sys/seal-status.
func (v *vaultAPI) sealStatusNoAuth(w http.ResponseWriter, r *http.Request, in routeReq) {
	v.writeJSON(w, http.StatusOK, map[string]any{
		"type": "shamir", "initialized": true, "sealed": false, "t": 1, "n": 1, "progress": 0, "nonce": "",
		"version": vaultVersion, "build_date": "", "migration": false, "cluster_name": "kmsledger", "cluster_id": "",
		"recovery_seal": false, "storage_type": "kmsledger",
	})
}

// GET sys/init.
func (v *vaultAPI) initNoAuth(w http.ResponseWriter, r *http.Request, in routeReq) {
	v.writeJSON(w, http.StatusOK, map[string]any{"initialized": true})
}

// POST sys/mounts/{path}: the mounts are the server's configuration;
// enabling one that is configured with type transit is a no-op (204),
// anything else is refused.
func (v *vaultAPI) mountEnable(w http.ResponseWriter, r *http.Request, in routeReq) {
	f, err := fields(r, in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	typ, _, _ := f.String("type")
	path := strings.Trim(r.PathValue("path"), "/")
	if _, ok := v.s.cfg.TransitMounts[path]; !ok || typ != "transit" {
		v.fail(w, r, vaultBad("mounts are set in the server's configuration (transit: mounts): "+strconv.Quote(path)+" is not a transit mount there"))
		return
	}
	noContent(w)
}

// accessorOf is a token accessor naming the identity without revealing
// the token.
func accessorOf(identity string) string {
	return strings.TrimPrefix(identity, "h1:")
}
