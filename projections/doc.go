// Package projections folds the LEDGER stream into in-memory state:
// enclaves, keys (compact records; their unsealed material in a bounded
// key cache, cache.go), identities and policies.
//
// Invariants:
//   - State changes only through State.Apply, in stream order; the
//     Projection records the last applied sequence (State.Seq).
//   - A Projection replays the whole ledger at Open and then tails it, so
//     a restart rebuilds exactly the same state. With snapshots
//     (snapshot.go) it starts from the newest sealed snapshot whose chain
//     value is still the ledger's at its sequence, and replays the tail
//     with every chain link checked; any doubt falls back to the full
//     replay. A snapshot holds sealed material only (it is itself sealed
//     under the REK). A delta snapshot (snapshot_delta.go) is read only
//     over the full snapshot it names, and gives the state a full one at
//     its sequence would: every key event's function records the key it
//     changes (Enclave.touch).
//   - Time travel (StateAt) is served from an index of encoded states
//     kept at intervals in an unlinked spill file, within a memory and a
//     disk budget (asof_index.go), replaying only the events after the
//     nearest one; its answers are those of a full replay (but hold no
//     subject sequences), and a block of the file that does not check is never
//     used (the query replays the ledger, the index is rebuilt).
//   - Key material is never held unsealed outside hsm.Key values; sealed
//     blobs are fetched from SECRETS when a version is used and not in the
//     key cache, which holds at most Options.KeyCache unsealed versions and
//     only usable ones (a destroyed, disabled or pending-deletion version
//     leaves it as the event is applied).
//   - Writers wait with WaitFor until their own sequence is applied
//     (read-your-writes); "not found" answers come after CatchUp.
package projections
