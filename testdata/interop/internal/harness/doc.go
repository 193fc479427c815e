// Package harness is the test harness shared by the packages of the interop
// module: it builds cmd/kmsledger from the enclosing repository, runs
// kmsledger (and other servers) as child processes, and keeps their output
// in log files from which secrets have been removed.
//
// It is test tooling of the interop module (which is AGPL-side because of
// the SDKs it tests with); the main module never imports it.
//
// Invariants:
//   - Every child process runs in its own process group and dies with the
//     test binary (SIGKILL on parent death). Stop sends SIGTERM to the group,
//     waits up to StopTimeout and then kills the group; it is idempotent.
//   - Nothing a child process prints reaches a log file or an error message
//     unredacted: k1:/k2: and kes:v1: API keys and hsm: keys are removed by
//     pattern, and literal secrets registered with a Redactor by value. Only
//     a ProcConfig.OnLine callback sees raw lines (to read the keys the
//     server prints).
//   - Clients built here trust only the CA file the server prints; TLS
//     verification is never skipped.
//   - Time limits only bound waits; nothing asserts how long a step took.
package harness
