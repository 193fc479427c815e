package kescompat

import "github.com/kmsledger/kmsledger/api/wire"

// KeyType maps a KES cipher or algorithm name to a kmsledger key type
// (wire.KeyTypeAES256 or wire.KeyTypeChaCha20): the names KES's API takes
// ("AES256", "ChaCha20") and the algorithm labels its key stores hold
// ("AES256-GCM_SHA256", "XCHACHA20-POLY1305"); the empty name means
// AES256, as in KES. ok is false for any other name.
func KeyType(cipher string) (typ string, ok bool) {
	switch cipher {
	case "", "AES256", "AES256-GCM_SHA256":
		return wire.KeyTypeAES256, true
	case "ChaCha20", "XCHACHA20-POLY1305":
		return wire.KeyTypeChaCha20, true
	}
	return "", false
}
