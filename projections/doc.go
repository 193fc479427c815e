// Package projections folds the LEDGER stream into in-memory state:
// enclaves, keys (with lazily unsealed Tink primitives), identities and
// policies.
//
// Invariants:
//   - State changes only through State.Apply, in stream order; the
//     Projection records the last applied sequence (State.Seq).
//   - A Projection replays the whole ledger at Open and then tails it, so
//     a restart rebuilds exactly the same state.
//   - Key material is never held unsealed outside hsm.Key values; sealed
//     blobs are fetched from SECRETS on first use.
//   - Writers wait with WaitFor until their own sequence is applied
//     (read-your-writes); "not found" answers come after CatchUp.
package projections
