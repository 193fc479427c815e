// Package migrate reads MinIO KES key stores so their keys can be imported
// into kmsledger.
//
// It understands an unmodified KES server config (ReadConfig), opens the
// key store the config names (OpenFS, OpenVault) and parses every stored
// value format KES ever wrote (ParseKeyValue). It never writes to the
// ledger: it yields Keys, and the caller imports them through commands,
// with CommandID as the idempotency key and kescompat.KeyName for names
// the ledger's subjects cannot carry. The formats are described in spec/kes.md and were
// re-implemented from that description and real KES fixtures
// (testdata/kes/), never from KES code.
//
// Invariants:
//
//   - A Key returned by ParseKeyValue always has exactly 32 bytes of
//     Material, a valid hsm.KeyType, and an HMACKey that is empty or 32
//     bytes long. Anything else is an error naming the key and the reason.
//   - Key material is held only in Key.Material and Key.HMACKey; String,
//     GoString, LogValue and MarshalJSON never reveal it. Callers clear it
//     (Key.Clear) once it has been sealed.
//   - Sources only read: nothing here modifies a KES key store.
//   - kescompat.KeyName and CommandID are pure and deterministic, so re-running a
//     migration yields the same names and command ids.
//   - Environment variables are read only through the getenv function the
//     caller passes to ReadConfig.
//
// This package talks HTTP to Vault (net/http) because the Vault key store
// has no other interface; that is the one exception to "only api and cmd
// import net/http".
package migrate
