package kescompat

// KES identities and kmsledger identities name the same thing: the
// SHA-256 hash of the SPKI of a client certificate.
//
//	KES:       hex(SHA-256(SPKI))                   64 lowercase hex digits
//	kmsledger: "h1:" ‖ base64url(SHA-256(SPKI))     no padding

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"github.com/kmsledger/kmsledger/api/wire"
)

// H1 turns a KES identity (64 hex digits, either case) into the kmsledger
// identity of the same key; ok is false for anything else, such as the
// placeholders "disabled" or an unset "${ADMIN}" of a KES config, and for
// an h1: identity.
func H1(kesID string) (string, bool) {
	b, err := hex.DecodeString(kesID)
	if err != nil || len(b) != sha256.Size {
		return "", false
	}
	return "h1:" + base64.RawURLEncoding.EncodeToString(b), true
}

// ParseIdentity accepts an identity in either form, as the KES API does:
// a KES identity is converted with H1, a valid h1: identity is returned
// unchanged.
func ParseIdentity(id string) (string, bool) {
	if wire.ValidIdentity(id) {
		return id, true
	}
	return H1(id)
}

// KESIdentity converts an h1: identity to the KES (lowercase hex) form;
// any other string (e.g. "" or a name) is returned unchanged.
func KESIdentity(id string) string {
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
