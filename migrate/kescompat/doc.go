// Package kescompat holds what kmsledger shares with the MinIO KES
// protocol and KES key stores, in one place, for the KES HTTP API (api),
// the KES migration (migrate) and the CLI (cmd/kmsledger):
//
//   - identities: a KES identity is hex(SHA-256(SPKI of the client
//     certificate)), the kmsledger identity of the same certificate is
//     "h1:" ‖ base64url of the same 32 bytes (H1, ParseIdentity,
//     KESIdentity);
//   - key names: KES key stores written by older KES releases may hold
//     names kmsledger cannot carry ("my.key"); KeyName maps them to the
//     name the migration imports them under and the KES API finds them by;
//   - policies: KES allow/deny lists of API path patterns and kmsledger
//     command → name pattern rules, both ways (PolicyRules, PolicyPaths);
//   - cipher names: the algorithm labels KES wrote and its API accepts
//     (KeyType).
//
// Everything here is pure and deterministic: no I/O, no clock, no
// randomness. The package is a leaf below migrate: it imports only
// api/wire (identities, command codes, rule syntax) and ledger (for
// ValidName, the one definition of a kmsledger name), never net/http and
// no other kmsledger package. HTTP statuses for its errors are the
// caller's business.
package kescompat
