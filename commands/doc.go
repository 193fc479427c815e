// Package commands turns requests into ledger events: Decide(state,
// command) checks a command against the projected state and returns the
// one event it produces; Handler executes it (store sealed material,
// append with compare-and-set, erase destroyed material, wait for the
// projection).
//
// Invariants:
//   - Names are validated here, once, before anything reaches the ledger.
//   - A key name exists once per enclave; no event is accepted for an
//     enclave that does not exist (also not for a deleted one).
//   - Each command appends exactly one event, so it is atomic.
//   - Key material is created or imported inside hsm and reaches the
//     store only sealed; deleting a key, a version or an enclave erases
//     its sealed material from SECRETS after the event is stored.
package commands
