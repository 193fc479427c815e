// Package cluster runs three-node kmsledger clusters as real processes on
// 127.0.0.1 and checks what issue 12 promises of them: kms-go with every
// endpoint keeps working while a node is killed (SIGKILL), hung (SIGSTOP)
// or wiped; no acknowledged key creation is lost when the stream leader,
// or every node at once, is killed; writes answer 503 without a majority
// while crypto goes on within the staleness bound; a revocation on one
// node is in force on another on the next request; an external cluster of
// stock nats-server processes (--nats-url) serves the same; and strangers
// can neither join the route port nor connect to the client port.
//
// The tests build cmd/kmsledger once. KMSLEDGER_CLUSTER_REPS sets how often
// the leader is killed (default 20). The stock nats-server comes from
// .ci/nats-bins.sh (KMSLEDGER_NATS_SERVER_BIN overrides it). Figures
// (failover times, revocation delay, benchmark rates) are printed with
// t.Log and "cluster figure:" lines.
package cluster
