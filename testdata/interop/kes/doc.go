// Package kesinterop drives a real kmsledger server through its KES API
// with the KES Go SDK (github.com/minio/kms-go/kes), the way MinIO does when
// configured with MINIO_KMS_KES_ENDPOINT, MINIO_KMS_KES_KEY_NAME and either
// MINIO_KMS_KES_API_KEY or a client certificate (README.md, "Migrating from KES, and the KES API").
//
// It lives in the interop module because the SDK is AGPL-licensed: the main
// module never imports it.
//
// Invariants of the test suite:
//   - TestMain (harness.RunMain) builds cmd/kmsledger from the enclosing
//     repository and runs `kmsledger server --dev --kes-enclave minio` on a
//     free loopback port; every test talks to that one server, which is
//     stopped at the end.
//   - KES callers are kes:v1 API keys (or a certificate) whose KES identity
//     (hex SHA-256 of the SPKI) is added to enclave minio through the kms
//     API as root, in its h1: form; nothing else is set up behind the API.
//   - Clients trust only the CA file the server prints; TLS verification is
//     never skipped.
//   - Errors are matched with errors.Is against the SDK's sentinel errors,
//     which compare the HTTP status and the exact message.
//   - Every test uses its own key names, so tests do not depend on order.
//   - No secret key material is logged.
package kesinterop
