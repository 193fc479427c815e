// Package porttest hands tests loopback TCP ports that nothing else on
// the machine will take before the test binds them.
//
// A port found free by binding 127.0.0.1:0 and closing comes from the
// kernel's ephemeral range, so any process's next listener on port 0, or
// an outbound connection, may take it before the test's server binds it
// (a cluster node once found its route port taken by another node's
// client listener). Ports from here lie outside that range, are reserved
// against the other test processes of the machine for the life of the
// process, and are never handed out twice.
//
// It imports only the standard library, so any package's tests may use it.
package porttest
