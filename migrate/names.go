// Command ids for imported keys (key names: kescompat.KeyName).
//
//	CommandID = hex(SHA-256("kmsledger/migrate/kes/v2" ‖ for each of
//	            enclave, kind, location, name, material: u32BE len ‖ bytes))

package migrate

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
)

const commandIDLabel = "kmsledger/migrate/kes/v2"

// ErrName means a key store cannot hold a key under the name asked for
// (e.g. a name with a "/" in an fs key store).
var ErrName = errors.New("migrate: invalid KES key name")

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
