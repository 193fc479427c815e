// Package node is the composition root of a kmsledger node: the one
// place that wires the parts together and takes them apart again. The
// server (cmd/kmsledger) and the test harness (api/nodetest) both start
// their node with Open, so the tests run the server's start-up path.
//
// It owns:
//   - opening the configured HSMs (OpenHSMs) and the ledger, unsealing
//     the Root Encryption Key (or initialising a new ledger under every
//     configured HSM), and the root API key (RootAPIKeyLabel, RootOf);
//   - the command handler, sealing the REK under configured HSMs that
//     have no sealing yet, reconciling sealed material, and the
//     scheduler of key deletions;
//   - auditing and signed checkpoints, with their defaults (a zero
//     setting is the ledger's default);
//   - the API server and its certificate (a self-signed one is kept in
//     DIR/tls);
//   - the shutdown order (Close): stop serving, stop the scheduler, store
//     every accepted audit record, write a last checkpoint covering them,
//     close the projection, the ledger and the HSMs;
//   - the offline audit of a stopped node's data dir (OpenOffline,
//     VerifyOffline, ExportOffline, OfflineKeys) and the verification of
//     an export with PEM public keys (ParsePublicKeys, VerifyExport).
//
// Flags, environment variables and printing are not its business: the
// binary maps them to a Config and prints what a Node reports.
//
// It may import ledger, projections, commands, hsm and its backends, api,
// api/wire and cmd/config. Nothing but cmd/kmsledger and test harnesses
// (api/nodetest) imports it.
package node
