// Package perf benchmarks kmsledger's data plane through the kms-go SDK
// against real server processes, next to a bare mTLS server that answers
// the same protocol with canned bytes (BenchmarkDataPlane).
package perf
