package api

import "github.com/kmsledger/kmsledger/api/wire"

// parseAtEdge parses the parts of a decoded message that carry rules
// into their canonical form, once, before the frame is authorised: a
// policy's command names (case-insensitive, unknown ones refused) and
// patterns (a name, prefix* or *). commands.Decide checks them again.
func parseAtEdge(m message) error {
	p, ok := m.(*wire.CreatePolicyRequest)
	if !ok {
		return nil
	}
	allow, err := wire.ParseRules(p.Allow)
	if err != nil {
		return badRequest("invalid policy: allow: %s", inputDetail(err))
	}
	deny, err := wire.ParseRules(p.Deny)
	if err != nil {
		return badRequest("invalid policy: deny: %s", inputDetail(err))
	}
	p.Allow, p.Deny = allow, deny
	return nil
}

// truncate shortens a client-supplied string for an error message.
func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
