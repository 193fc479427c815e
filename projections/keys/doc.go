// Package keys is the read-and-crypto service of the query side: the one
// place where a request that reads state or uses a key is decided, for
// every wire protocol (the kms API, the KES API, the admin API).
//
// It owns:
//   - lookups that catch up with the ledger head before they answer "not
//     found" (a key created through another connection a moment ago is
//     found): Key, UsableKey, Read, ReadEnclave, ReadKey;
//   - the crypto operations: GenerateDataKey, Encrypt, Decrypt (version
//     taken from the ciphertext, or for ciphertexts of an imported key's
//     earlier life — KES, MinIO's built-in KMS — tried with the version
//     asked for or every version, newest first), MAC and Rewrap;
//   - the status reads of enclaves, keys, policies and identities, and the
//     list pages (sorted names, prefix, ContinueAt, page size).
//
// Methods take and return domain values (names, versions, bytes, small
// structs), never wire messages: the adapters in api translate formats.
// Errors are the sentinels of projections, commands and hsm, unchanged, so
// the HTTP error tables keep their exact statuses and messages.
//
// Usage tracking stays where it was: UsableKey records a version's last
// use (projections) and hsm.Key counts encryptions and decryptions.
//
// Imports: projections, commands (its not-found sentinels only), hsm and
// ledger. Never net/http, never api or its subpackages.
package keys
