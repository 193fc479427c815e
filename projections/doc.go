// Package projections folds the LEDGER stream into in-memory state:
// enclaves, keys (compact records; their unsealed material in a bounded
// key cache, cache.go), identities and policies.
//
// Invariants:
//   - State changes only through State.Apply, in stream order; the
//     Projection records the last applied sequence (State.Seq).
//   - A Projection replays the whole ledger at Open and then tails it, so
//     a restart rebuilds exactly the same state.
//   - Key material is never held unsealed outside hsm.Key values; sealed
//     blobs are fetched from SECRETS when a version is used and not in the
//     key cache, which holds at most Options.KeyCache unsealed versions and
//     only usable ones (a destroyed, disabled or pending-deletion version
//     leaves it as the event is applied).
//   - Writers wait with WaitFor until their own sequence is applied
//     (read-your-writes); "not found" answers come after CatchUp.
package projections
