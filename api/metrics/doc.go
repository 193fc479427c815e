// Package metrics keeps the server's Prometheus metrics and writes them
// in the Prometheus text or OpenMetrics format (README.md, "Metrics").
//
// Invariants:
//   - one Registry per server, injected, never the global default one;
//   - the request path allocates nothing once a series exists: the
//     counter and histogram children of each (api, route, command,
//     result) are resolved once and kept in a copy-on-write map that
//     requests read without a lock;
//   - the state figures (keys, enclaves, ledger head, audit, HSMs) are
//     read when a scrape asks for them (Snapshot), not kept up to date;
//   - no label value comes from a client but through a bounded set: the
//     route is a pattern of the route table, the command a known command
//     name, the result an HTTP status.
package metrics
