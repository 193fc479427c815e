// Package transit holds the wire formats of the Vault/OpenBao Transit API
// that kmsledger serves (README.md, "Vault Transit API"): request fields
// with Vault's lenient typing, the response envelope, error bodies, and
// the "vault:v<N>:" strings of ciphertexts and HMACs.
//
// It only translates formats: who may call what, and every key operation,
// are decided by the server package api (routes.go, transit*.go), on the
// same access evaluator (projections/access) and read-and-crypto service
// (projections/keys) as the kms and KES APIs.
//
// Wire rules kept here, from Vault's clients (the Go client
// github.com/hashicorp/vault/api, the vault CLI, vaultrs):
//   - a body is a JSON object whatever its Content-Type; an empty body and
//     "null" are {}; query parameters of reads are fields too;
//   - booleans also come as "true"/"false"/"1"/"0", integers as numeric
//     strings, durations as seconds or Go duration strings;
//   - base64 fields use standard encoding with padding;
//   - every 2xx body carries request_id, lease_id, lease_duration and
//     renewable; errors are {"errors": [...]}, and a missing object is 404
//     with an empty list.
//
// Imports: the standard library only.
package transit
