package ledger

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// Subject layout. This file is the only place that builds NATS subjects;
// every name reaching it has been checked with ValidName at the edge.
//
//	ledger._.system                     system-wide events
//	ledger._.enclave.<enclave>          enclave lifecycle
//	ledger.<enclave>.key.<key>          one key
//	ledger.<enclave>.identity.<id>      one identity (id is "h1:<base64url>")
//	ledger.<enclave>.policy.<name>      one policy
//	ledger.<enclave>.approle.<role>     one AppRole role (Transit API)
//	ledger.<enclave>.token.<accessor>   one Transit token
//	secrets.<enclave>.<key>.<version>.<attempt>
//	                                    sealed key material (SECRETS stream)
//	secrets.<enclave>.<key>.<version>   the same, as written before attempts
//	                                    were part of the reference
//
// Enclave names cannot be "_", so enclave subjects never collide with the
// system subjects.
const (
	ledgerPrefix  = "ledger."
	secretsPrefix = "secrets."
	systemToken   = "_"
	maxNameLen    = 80
)

// ValidName reports whether s may be used as an enclave, key or policy name:
// 1 to 80 characters from [A-Za-z0-9_-], and not "_" (reserved for system
// subjects). A valid name is always a single, literal NATS subject token.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen || s == systemToken {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// EnclaveSubject returns the subject of an enclave's lifecycle events:
// "ledger._.enclave.<enclave>".
func EnclaveSubject(enclave string) string {
	return ledgerPrefix + systemToken + ".enclave." + enclave
}

// SystemSubject returns the subject of system-wide events: "ledger._.system".
func SystemSubject() string {
	return ledgerPrefix + systemToken + ".system"
}

// KeySubject returns the subject of a key aggregate:
// "ledger.<enclave>.key.<key>".
func KeySubject(enclave, key string) string {
	return ledgerPrefix + enclave + ".key." + key
}

// IdentitySubject returns the subject of an identity aggregate:
// "ledger.<enclave>.identity.<id>". The id ("h1:<base64url>") contains no
// dots, spaces or wildcards.
func IdentitySubject(enclave, id string) string {
	return ledgerPrefix + enclave + ".identity." + id
}

// PolicySubject returns the subject of a policy aggregate:
// "ledger.<enclave>.policy.<name>".
func PolicySubject(enclave, name string) string {
	return ledgerPrefix + enclave + ".policy." + name
}

// AppRoleSubject returns the subject of an AppRole role:
// "ledger.<enclave>.approle.<role>".
func AppRoleSubject(enclave, role string) string {
	return ledgerPrefix + enclave + ".approle." + role
}

// TokenSubject returns the subject of a Transit token:
// "ledger.<enclave>.token.<accessor>" (the accessor is hex).
func TokenSubject(enclave, accessor string) string {
	return ledgerPrefix + enclave + ".token." + accessor
}

// EnclaveWildcard returns the subject filter matching every aggregate of an
// enclave: "ledger.<enclave>.>". Use it as Expect.Subject for an
// enclave-wide expectation. It does not match the enclave's own lifecycle
// subject (EnclaveSubject).
func EnclaveWildcard(enclave string) string {
	return ledgerPrefix + enclave + ".>"
}

// SecretRef returns the SECRETS reference of one key version in the
// layout written before references named an attempt:
// "<enclave>.<key>.<version>". Events recorded with it stay valid; new
// versions use AttemptSecretRef.
func SecretRef(enclave, key string, version uint32) string {
	return string(AppendSecretRef(make([]byte, 0, len(enclave)+len(key)+12), enclave, key, version))
}

// AppendSecretRef appends SecretRef(enclave, key, version) to b.
func AppendSecretRef(b []byte, enclave, key string, version uint32) []byte {
	b = append(append(append(append(b, enclave...), '.'), key...), '.')
	return strconv.AppendUint(b, uint64(version), 10)
}

// AttemptSecretRef returns the SECRETS reference of the material that one
// attempt to create a key version stores before it appends its event:
// "<enclave>.<key>.<version>.<attempt>", where attempt is unique to the
// attempt (AttemptOf its event id, a token without dots). Since no two
// attempts share a reference, an attempt that loses (conflict, duplicate,
// failure) can erase what it stored without touching the material of the
// attempt that won, and material it left behind never blocks a later
// attempt. The event records the reference, and readers take it from
// there (a key frame stores the event id and rebuilds the same JSON).
func AttemptSecretRef(enclave, key string, version uint32, attempt string) string {
	return SecretRef(enclave, key, version) + "." + attempt
}

// AttemptOf returns the attempt that names the material a command with
// event id eventID stores (AttemptSecretRef): for an id of 32 lower-case
// hex digits (the commands layer's), its first 8 bytes in unpadded
// base64url, 11 characters; any other id as it is. References written
// before name the whole id; both are read, since readers take the
// reference the event recorded. 64 bits tell apart the few attempts that
// can race on one key version (a second message on a reference is
// refused anyway, PutSecret), and each reference is then 21 bytes
// shorter in SECRETS' messages, its state file and its index in memory.
func AttemptOf(eventID string) string {
	if id, ok := lowerHex(eventID, 16); ok {
		return base64.RawURLEncoding.EncodeToString(id[:8])
	}
	return eventID
}

// SplitSecretRef reads a reference SecretRef or AttemptSecretRef made:
// "<enclave>.<key>.<version>[.<attempt>]". Events record references as
// written, so a reader that finds the version must still compare the
// whole reference with the one its event recorded.
func SplitSecretRef(ref string) (enclave, key string, version uint32, ok bool) {
	enclave, rest, ok1 := strings.Cut(ref, ".")
	key, rest, ok2 := strings.Cut(rest, ".")
	v, attempt, _ := strings.Cut(rest, ".")
	n, err := strconv.ParseUint(v, 10, 32)
	if !ok1 || !ok2 || err != nil || strings.Contains(attempt, ".") {
		return "", "", 0, false
	}
	return enclave, key, uint32(n), true
}

// secretSubject maps a secret reference (or a wildcard filter) to its
// subject in the SECRETS stream.
func secretSubject(ref string) string {
	return secretsPrefix + ref
}

// validSubject reports whether subj is a well-formed subject under prefix:
// non-empty tokens without whitespace or control characters. If wild is
// false, the wildcards '*' and '>' are refused; otherwise '*' may stand for
// a whole token and '>' for the last one.
func validSubject(subj, prefix string, wild bool) bool {
	rest, ok := strings.CutPrefix(subj, prefix)
	if !ok || rest == "" {
		return false
	}
	tokens := strings.Split(rest, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return false
		case t == "*" || t == ">":
			if !wild || (t == ">" && i != len(tokens)-1) {
				return false
			}
			continue
		}
		for j := 0; j < len(t); j++ {
			if c := t[j]; c <= ' ' || c == 0x7f || c == '*' || c == '>' {
				return false
			}
		}
	}
	return true
}
