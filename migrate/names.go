// Key names and command ids for imported keys.
//
// kmsledger key names are ledger.ValidName: 1–80 bytes of [A-Za-z0-9_-],
// not "_". Current KES accepts only such names, but older key stores
// (Vault, AWS, … written by KES releases with laxer checks) may hold names
// such as "my.key". MapName keeps a valid name and otherwise maps it:
//
//	mapped = sanitize(name)[:71] ‖ "-" ‖ hex(SHA-256(name))[:8]
//	sanitize: every byte outside [A-Za-z0-9_-] becomes '_'
//
// The hash suffix keeps distinct originals apart ("a.b" and "a:b" differ),
// and the result is always valid (at most 71 + 9 = 80 bytes). The caller
// records the original name in the import's provenance.
//
//	CommandID = hex(SHA-256("kmsledger/migrate/kes/v2" ‖ for each of
//	            enclave, kind, location, name, material: u32BE len ‖ bytes))

package migrate

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/kmsledger/kmsledger/ledger"
)

const (
	maxNameLen     = 80
	nameHashHexLen = 8
	commandIDLabel = "kmsledger/migrate/kes/v2"
)

// ErrName means a KES key name cannot be mapped to a kmsledger name (it is
// empty).
var ErrName = errors.New("migrate: invalid KES key name")

// MapName returns the kmsledger key name for a KES key name: the name
// itself when ledger.ValidName accepts it, otherwise the documented mapping
// above. The only error is for an empty name.
func MapName(kesName string) (string, error) {
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

// CommandID returns a deterministic id for the command that imports one
// key into enclave: the same enclave, source, name and material always
// give the same id, so a migration re-run into the same enclave is
// recognised as a duplicate, while the same store migrated into another
// enclave is a new import there. (The ledger also scopes every command id
// to the key it writes, see ledger.ScopedMsgID.) The id is a SHA-256 hash
// and does not reveal the material.
func CommandID(enclave, sourceKind, location, name string, material []byte) string {
	h := sha256.New()
	h.Write([]byte(commandIDLabel))
	for _, f := range [][]byte{[]byte(enclave), []byte(sourceKind), []byte(location), []byte(name), material} {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(f))))
		h.Write(f)
	}
	return hex.EncodeToString(h.Sum(nil))
}
