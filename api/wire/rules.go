package wire

import (
	"maps"
	"slices"
	"strings"
)

// ErrInvalidPattern is returned by ParseRules for a pattern that is not a
// name, "prefix*" or "*".
var ErrInvalidPattern = newClientError("invalid policy pattern")

// maxPatternLen bounds a pattern: the longest name (80) plus the '*'.
const maxPatternLen = 81

// ParseRules parses the allow or deny rules of a policy once, at the edge:
// every command name must name a command of the protocol, matched
// ignoring case (an unknown one is an error wrapping ErrUnknownCommand
// that names it), and every pattern must be "*", a name, or a name prefix
// followed by "*" (an error wrapping ErrInvalidPattern otherwise). A name
// is 1 to 80 characters from [A-Za-z0-9_-:] (key, policy and enclave
// names, and h1: identities). Empty patterns are dropped (kms-go does the
// same). The result has canonical command names ("KEY:DECRYPT"), patterns
// sorted and de-duplicated, rule sets merged when two names differ only
// in case, and no empty rule set; nil for no rules.
//
// ParseRules of its own result returns an equal map.
func ParseRules(rules map[string][]string) (map[string][]string, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	out := make(map[string][]string, len(rules))
	for _, name := range slices.Sorted(maps.Keys(rules)) {
		cmd, err := ParseCommand(name)
		if err != nil {
			return nil, refuse(ErrUnknownCommand, "%q", truncate(name))
		}
		for _, p := range rules[name] {
			if p == "" {
				continue
			}
			if !validPattern(p) {
				return nil, refuse(ErrInvalidPattern, "%s: %q: want a name, prefix* or *", cmd, truncate(p))
			}
			out[cmd.String()] = append(out[cmd.String()], p)
		}
	}
	for c, ps := range out {
		slices.Sort(ps)
		out[c] = slices.Compact(ps)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// CanonicalRules is the lenient form of ParseRules for rules already
// stored: known command names are mapped to their canonical form (so a
// rule written as "key:decrypt" before names were checked is enforced as
// KEY:DECRYPT), unknown names and their patterns are kept verbatim (they
// match no command), and patterns are sorted and de-duplicated. It never
// fails, so replaying old events never breaks.
func CanonicalRules(rules map[string][]string) map[string][]string {
	if len(rules) == 0 {
		return rules
	}
	out := make(map[string][]string, len(rules))
	for name, ps := range rules {
		key := name
		if cmd, err := ParseCommand(name); err == nil {
			key = cmd.String()
		}
		out[key] = append(out[key], ps...)
	}
	for c, ps := range out {
		ps = slices.DeleteFunc(slices.Clone(ps), func(p string) bool { return p == "" })
		slices.Sort(ps)
		out[c] = slices.Compact(ps)
	}
	return out
}

// validPattern reports whether p is "*", a name, or a name prefix
// followed by "*".
func validPattern(p string) bool {
	if p == "*" {
		return true
	}
	if len(p) > maxPatternLen {
		return false
	}
	body, star := strings.CutSuffix(p, "*")
	if body == "" || (!star && len(body) > maxPatternLen-1) {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == ':':
		default:
			return false
		}
	}
	return true
}

// truncate shortens a client-supplied string for an error message.
func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
