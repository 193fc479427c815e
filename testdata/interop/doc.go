// Package interop drives a real kmsledger server with MinIO's official KMS
// SDK (github.com/minio/kms-go/kms, pinned to the version MinIO itself pins)
// and checks that every SDK call MinIO and `mc` can make behaves as the wire
// contract (README.md, "Coming from minkms", and package api/wire) says.
//
// It is a separate Go module on purpose: the SDK is AGPL-licensed and the
// main module must never import it. Nothing here is imported by kmsledger.
//
// Invariants of the test suite:
//   - TestMain (harness.RunMain) builds cmd/kmsledger once from the
//     enclosing repository, starts `kmsledger server --dev` on a free
//     loopback port, and stops it (SIGTERM, then kill) when the tests end.
//     Every test talks to that one server.
//   - Clients trust only the CA file the server prints (KMSLEDGER_CA_FILE);
//     TLS verification is never skipped.
//   - Every test group works in its own, freshly created enclave, so groups do
//     not depend on each other or on their order.
//   - Errors are matched with errors.Is against the SDK's sentinel errors,
//     which compare the HTTP status and the exact message.
//   - No secret key material (API keys, plaintexts, data keys) is logged.
package interop
