// Package api serves the kms HTTP API (package wire documents it): HTTPS with
// client certificates, identity = "h1:" + base64url(sha256(SPKI)), and the
// binary framing on POST /v1/kms[/{enclave}].
//
// Invariants:
//   - Every frame of a request is decoded and authorised before any of
//     them runs; a request fails as a whole.
//   - Responses carry an exact Content-Length and are never compressed;
//     a successful read answers with one frame per request frame.
//   - Errors map to statuses in one table (errors.go) with the exact
//     messages kms-go clients match on; unknown errors are logged and
//     answered "internal error", so no internal detail leaks.
//   - Only /version, /v1/health/live, /v1/health/ready and (with the KES
//     API) /v1/ready answer without a client certificate.
//   - Besides the kms framing, the same listener serves a JSON admin API
//     (admin.go: key lifecycle, migration imports; hsm_admin.go: the root of
//     trust), time travel (timetravel*.go) and, optionally, the KES API
//     (kes*.go). All of them authorise through the rules of package
//     projections/access (auth.go names them for this package).
//   - The operations routes (debug.go: profiling, restart; debug_log.go:
//     the log streams; observe.go: metrics and the request log, with
//     package api/metrics) are root's, except the metrics, which metrics
//     readers (access.MayReadMetrics) may scrape too. Every request is
//     counted and, at debug level, logged as one line without a body.
package api
