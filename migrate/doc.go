// Package migrate moves MinIO KES key stores into kmsledger.
//
// It understands an unmodified KES server config (ReadConfig), opens the
// key store the config names (OpenFS, OpenVault) and parses every stored
// value format KES ever wrote (ParseKeyValue). Run orchestrates a
// migration: it imports the keys of a Source into one enclave through an
// Importer (the server's client, *client.Client), with CommandID as the
// idempotency key and kescompat.KeyName for names the ledger's subjects
// cannot carry, then the config's policies and identities
// (kescompat.PolicyRules, kescompat.H1). It never writes to the ledger
// itself: every import goes through the server, so imported keys obey the
// same rules and are audited. The formats are described in value.go,
// source.go and vault.go and were re-implemented from their public
// description and real KES fixtures (testdata/kes/), never from KES code.
//
// Invariants:
//
//   - A Key returned by ParseKeyValue always has exactly 32 bytes of
//     Material, a valid hsm.KeyType, and an HMACKey that is empty or 32
//     bytes long. Anything else is an error naming the key and the reason.
//   - Key material is held only in Key.Material and Key.HMACKey; String,
//     GoString, LogValue and MarshalJSON never reveal it. Callers clear it
//     (Key.Clear) once it has been sealed; Run does.
//   - Sources only read: nothing here modifies a KES key store.
//   - kescompat.KeyName and CommandID are pure and deterministic, so
//     re-running a migration yields the same names and command ids, and
//     appends nothing.
//   - Environment variables are read only through the getenv function the
//     caller passes to ReadConfig.
//
// Imports: hsm (key types, fingerprints), api/wire and
// api/client (the Importer's requests and error sentinels) and
// migrate/kescompat; never api, commands or projections. This package
// talks HTTP to Vault (net/http) because the Vault key store has no other
// interface; that is the one exception to "only api and cmd import
// net/http".
package migrate
