// Package bench drives a running server through the kms API (the minkms
// wire protocol) or the KES API with N workers for D seconds per run and
// reports operations per second, latency percentiles (p50, p99, p99.9)
// and the server's CPU time per operation (user + system, from
// /proc/PID/stat, when its process id is given).
//
// With a baseline it also measures a bare mTLS server that answers the
// same protocol with canned bytes (bare.go: no authentication, no lookup,
// no crypto) in the same run, the targets taking turns round after round
// (A/B/A/B…) so that the machine's noise hits them alike. Another server
// (a second kmsledger, or KES through the KES API) can join the rotation.
//
// Method: every worker first sends one untimed request (the connection
// pool warms up), then loops until the run's end; an operation's latency
// is the time of its client call, a batch counts as one operation. The
// server's CPU is read before and after each run. The figures are those of
// the client stack used here: our Go client over HTTP/1.1 and TLS with
// connection reuse, one client shared by the workers, as MinIO shares one.
package bench
