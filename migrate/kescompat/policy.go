package kescompat

// KES policies (allow/deny lists of API path patterns) and
// kmsledger policies (command → name patterns) converted both ways.
//
// A KES pattern matches a request path exactly, or, when it ends in "*",
// every path it is a prefix of (crossing "/"). It is mapped API by API:
//
//   - pattern "P*" and API path A (e.g. "/v1/key/generate/"): if P is a
//     prefix of A, the command of A is granted on "*"; if A is a prefix of
//     P, it is granted on P[len(A):] + "*" (e.g. "/v1/key/generate/my-key*"
//     → KEY:GENERATE "my-key*");
//   - an exact pattern A ‖ NAME grants the command of A on NAME.
//
// Identity APIs take hex identities: only whole identities and "*" map (an
// h1: identity is a different encoding of the same hash, so a hex prefix
// has no h1: equivalent).
//
// What does not map:
//   - /version, /v1/ready, /v1/status, /v1/metrics, /v1/api and
//     /v1/identity/self/describe are open to every identity of the KES
//     enclave; allow and deny patterns on them are accepted and have no
//     effect;
//   - a list pattern with a prefix ("/v1/key/list/minio*") grants listing
//     with any prefix: kmsledger's list rights are all or nothing;
//   - KES APIs kmsledger does not serve — the log streams, and the
//     pre-2023 /v1/secret, /v1/enclave, /v1/sys, /v1/policy/{write,assign,
//     delete} and /v1/identity/delete — cannot be granted: an allow
//     pattern that grants only such APIs is an error; denying them is a
//     no-op (nobody can call them);
//   - glob syntax of KES ≤ v0.22 ("?", "[", or "*" anywhere but at the
//     end) is an error, as is a hex identity prefix.

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kmsledger/kmsledger/api/wire"
)

// ErrPolicy means a KES policy pattern has no kmsledger equivalent.
var ErrPolicy = errors.New("kescompat: KES policy pattern cannot be mapped")

// policyAPI is a KES API path that maps to a command.
type policyAPI struct {
	path     string
	cmd      wire.Command
	identity bool // the argument is a hex identity
	list     bool // the argument is a list prefix
}

// policyAPIs lists the KES APIs with a command. Bulk decrypt comes after
// decrypt so that converting rules back yields "/v1/key/decrypt/…".
func policyAPIs() []policyAPI {
	return []policyAPI{
		{"/v1/key/create/", wire.CmdKeyCreate, false, false},
		{"/v1/key/import/", wire.CmdKeyImport, false, false},
		{"/v1/key/describe/", wire.CmdKeyStatus, false, false},
		{"/v1/key/delete/", wire.CmdKeyDelete, false, false},
		{"/v1/key/list/", wire.CmdKeyList, false, true},
		{"/v1/key/generate/", wire.CmdKeyGenerate, false, false},
		{"/v1/key/encrypt/", wire.CmdKeyEncrypt, false, false},
		{"/v1/key/decrypt/", wire.CmdKeyDecrypt, false, false},
		{"/v1/key/bulk/decrypt/", wire.CmdKeyDecrypt, false, false},
		{"/v1/key/hmac/", wire.CmdKeyMAC, false, false},
		{"/v1/policy/describe/", wire.CmdPolicyStatus, false, false},
		{"/v1/policy/read/", wire.CmdPolicyGet, false, false},
		{"/v1/policy/list/", wire.CmdPolicyList, false, true},
		{"/v1/identity/describe/", wire.CmdIdentityStatus, true, false},
		{"/v1/identity/list/", wire.CmdIdentityList, false, true},
	}
}

// openAPIs are served to every identity of the enclave.
func openAPIs() []string {
	return []string{"/version", "/v1/ready", "/v1/status", "/v1/metrics", "/v1/api", "/v1/identity/self/describe"}
}

// PolicyRules converts the allow and deny path patterns of a KES policy
// into command → name pattern rules for commands.CreatePolicy (see the
// mapping above). Unmappable patterns are reported together in err, each
// wrapping ErrPolicy and naming the pattern; the returned rules then hold
// everything that did map, so a caller may report and go on, knowing the
// identity loses exactly the rights named in err.
func PolicyRules(allow, deny []string) (allowRules, denyRules map[string][]string, err error) {
	var errs []error
	allowRules, denyRules = map[string][]string{}, map[string][]string{}
	for _, p := range allow {
		if e := addPattern(allowRules, p, true); e != nil {
			errs = append(errs, e)
		}
	}
	for _, p := range deny {
		if e := addPattern(denyRules, p, false); e != nil {
			errs = append(errs, e)
		}
	}
	return compactRules(allowRules), compactRules(denyRules), errors.Join(errs...)
}

func addPattern(rules map[string][]string, pattern string, allow bool) error {
	prefix, star := strings.CutSuffix(pattern, "*")
	if pattern == "" || strings.ContainsAny(prefix, "*?[]\\") {
		return fmt.Errorf("%w: %q: only a final '*' is supported (not the glob syntax of KES ≤ v0.22)", ErrPolicy, pattern)
	}
	mapped := false
	for _, api := range policyAPIs() {
		// rest is the name pattern the KES pattern implies for api; ok is
		// false if the pattern matches no path of api.
		var rest string
		var ok bool
		switch {
		case star && strings.HasPrefix(api.path, prefix):
			rest, ok = "*", true
		case star && strings.HasPrefix(prefix, api.path):
			rest, ok = prefix[len(api.path):]+"*", true
			if api.identity {
				return fmt.Errorf("%w: %q: a prefix of a hex identity has no h1: equivalent", ErrPolicy, pattern)
			}
		case !star && api.list && (pattern == api.path || pattern+"/" == api.path):
			rest, ok = "*", true // the whole listing (the SDK asks for ".../list")
		case !star && strings.HasPrefix(pattern, api.path) && len(pattern) > len(api.path):
			rest, ok = pattern[len(api.path):], true
			if api.identity {
				if rest, ok = ParseIdentity(rest); !ok {
					return fmt.Errorf("%w: %q: not a hex identity", ErrPolicy, pattern)
				}
			}
		}
		if !ok {
			continue
		}
		if api.list && rest != "*" {
			if !allow {
				return fmt.Errorf("%w: %q: listing cannot be denied for some prefixes only", ErrPolicy, pattern)
			}
			// Allowed to list some names: kmsledger list rights are all
			// or nothing, and any allow pattern grants the listing.
		}
		name := api.cmd.String()
		if _, err := wire.ParseRules(map[string][]string{name: {rest}}); err != nil {
			// e.g. "/v1/key/generate/my.key": no kmsledger name has a '.'.
			return fmt.Errorf("%w: %q: %q is not a kmsledger name pattern", ErrPolicy, pattern, rest)
		}
		rules[name] = append(rules[name], rest)
		mapped = true
	}
	if mapped || !allow {
		return nil
	}
	for _, api := range openAPIs() {
		if star && (strings.HasPrefix(api, prefix) || strings.HasPrefix(prefix, api)) || pattern == api {
			return nil
		}
	}
	if strings.HasPrefix(pattern, "/") {
		return fmt.Errorf("%w: %q grants no API that kmsledger serves", ErrPolicy, pattern)
	}
	return fmt.Errorf("%w: %q is not an API path", ErrPolicy, pattern)
}

// compactRules sorts and de-duplicates each command's patterns; "*"
// absorbs the rest.
func compactRules(rules map[string][]string) map[string][]string {
	for cmd, ps := range rules {
		if slices.Contains(ps, "*") {
			rules[cmd] = []string{"*"}
			continue
		}
		slices.Sort(ps)
		rules[cmd] = slices.Compact(ps)
	}
	return rules
}

// PolicyPaths converts command rules into KES path patterns (the
// inverse of PolicyRules for everything KES can express; rules of
// commands without a KES API are left out). h1: identities become hex.
func PolicyPaths(rules map[string][]string) map[string]struct{} {
	out := map[string]struct{}{}
	done := map[wire.Command]bool{}
	for _, api := range policyAPIs() {
		if done[api.cmd] {
			continue
		}
		done[api.cmd] = true
		for _, p := range rules[api.cmd.String()] {
			if api.identity && p != "*" {
				p = KESIdentity(p)
			}
			out[api.path+p] = struct{}{}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
