package access

import (
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/projections"
)

// MetricsResource is the resource a policy names to allow reading the
// server's metrics: a policy whose allow rules give CLUSTER:STATUS on
// "metrics" (or on a pattern matching it, such as "*"), and whose deny
// rules do not take it back, lets its identities scrape
// /v1/health/metrics and KES's /v1/metrics.
//
// Why CLUSTER:STATUS: metrics are status information about the whole
// server, and a new command name would make kms-go's GetPolicy reject the
// policy (it refuses names it does not know). The metrics show figures
// of every enclave, so the grant counts only when the root identity made
// both the policy and the identity (for a service account: its parent):
// an enclave Admin cannot mint a scraper by writing such a policy in its
// enclave.
const MetricsResource = "metrics"

// MayReadMetrics reports whether identity may read the server's metrics:
// it is the root identity, or an identity of some enclave that the root
// identity created and whose policy, created by the root identity,
// allows CLUSTER:STATUS on MetricsResource (a service account: its
// parent's, by the same rule).
func MayReadMetrics(st *projections.State, identity string) bool {
	if IsRoot(st, identity) {
		return true
	}
	if identity == "" {
		return false
	}
	name := wire.CmdClusterStatus.String()
	for _, e := range st.Enclaves {
		x := e.Identities[identity]
		if x == nil {
			continue
		}
		eff, viaRoot := rights(st, e, x)
		if viaRoot || eff == nil || eff.CreatedBy != st.RootIdentity {
			continue
		}
		p := e.Policies[eff.Policy]
		if p == nil || p.CreatedBy != st.RootIdentity {
			continue
		}
		if matchAny(p.Allow[name], MetricsResource) && !matchAny(p.Deny[name], MetricsResource) {
			return true
		}
	}
	return false
}
