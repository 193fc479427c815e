package kescompat

// Key names.
//
// kmsledger key names are ledger.ValidName: 1–80 bytes of [A-Za-z0-9_-],
// not "_". Current KES accepts only such names, but older key stores
// (Vault, AWS, … written by KES releases with laxer checks) may hold names
// such as "my.key". KeyName keeps a valid name and otherwise maps it:
//
//	mapped = sanitize(name)[:71] ‖ "-" ‖ hex(SHA-256(name))[:8]
//	sanitize: every byte outside [A-Za-z0-9_-] becomes '_'
//
// The hash suffix keeps distinct originals apart ("a.b" and "a:b" differ),
// and the result is always valid (at most 71 + 9 = 80 bytes). The
// migration imports a key under the mapped name (recording the original
// in its provenance), and the KES API maps a name it is given the same
// way, so clients keep using the old name for existing keys.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/kmsledger/kmsledger/ledger"
)

const (
	maxNameLen     = 80
	nameHashHexLen = 8
)

// ErrName means a KES key name cannot be mapped to a kmsledger name (it is
// empty).
var ErrName = errors.New("kescompat: invalid KES key name")

// KeyName returns the kmsledger key name for a KES key name: the name
// itself when ledger.ValidName accepts it, otherwise the mapping above.
// The only error, wrapping ErrName, is for an empty name.
func KeyName(kesName string) (string, error) {
	if kesName == "" {
		return "", fmt.Errorf("%w: empty", ErrName)
	}
	if ledger.ValidName(kesName) {
		return kesName, nil
	}
	b := []byte(kesName)
	for i, c := range b {
		if !nameByte(c) {
			b[i] = '_'
		}
	}
	if keep := maxNameLen - 1 - nameHashHexLen; len(b) > keep {
		b = b[:keep]
	}
	sum := sha256.Sum256([]byte(kesName))
	return string(b) + "-" + hex.EncodeToString(sum[:])[:nameHashHexLen], nil
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}
