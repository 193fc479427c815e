// Package minio runs the real MinIO object server and the real `mc` client
// against a real kmsledger server, end to end, as issue 3 asks: key creation
// through `mc admin kms`, SSE-KMS and SSE-S3 objects (single-part and
// multipart), rotation, disable/enable, restarts of both servers, key
// destruction, and the migration of a MinIO that ran on a static key
// (MINIO_KMS_SECRET_KEY) to kmsledger.
//
// Only the test files hold code; this file exists to document the package.
// MinIO and mc are AGPL programs: they are run as separate processes and
// never linked. Their pinned versions are built by .ci/minio-bins.sh and
// found through KMSLEDGER_MINIO_BIN and KMSLEDGER_MC_BIN (run.sh sets both).
//
// Invariants of the test:
//   - A missing MinIO or mc binary fails the test; it is never skipped.
//   - kmsledger is built from the enclosing repository and run with a
//     persistent data dir under t.TempDir(), so a restart keeps its keys.
//     MinIO trusts only kmsledger's own CA (<certs-dir>/CAs/); nothing skips
//     TLS verification.
//   - MinIO authenticates as a User identity whose policy allows exactly what
//     MinIO needs, never as root.
//   - Every process runs in its own process group on random free loopback
//     ports and is stopped (SIGTERM, then SIGKILL to the group) by
//     t.Cleanup, also when the test fails.
//   - Objects are compared by SHA-256 of their full content.
//   - Logs never contain API keys, the HSM key or static key material: all
//     process output is redacted before it reaches a file, and a failed test
//     prints the redacted tail of each server's log.
package minio
