// Package access holds the access rules of kmsledger: who may run which
// command on what, who may change which identity, and who may read the
// ledger's history. Every rule is a pure function of a projected state
// (projections.State); nothing here performs I/O or keeps state.
//
// The core is Explain, which returns the grant that allows a call (the
// root identity, an Admin of the enclave, a service account of one of
// those, or a User through which policy and allow pattern) or none.
// Authorize is Explain's verdict and WhoCan lists Explain's grants, so the
// answer to "may X do this?" and to "who may do this?" agree by
// construction. The HTTP layer (package api) maps a refusal to its
// permission error; the rules never see a request.
//
// The rules (README.md, "Security model"):
//   - the root (SysAdmin) identity may do everything;
//   - cluster and enclave commands (wire.ScopeCluster, wire.ScopeEnclave)
//     are for the root identity only;
//   - an Admin of the enclave may do everything inside it;
//   - a User may do what its policy allows: an allow pattern of the
//     command matches the resource and no deny pattern does (deny wins;
//     default deny); a listing needs any allow pattern of the command;
//   - a service account has its parent's rights (the root identity's
//     service accounts are Admins of their enclave);
//   - nobody but root reaches an enclave it has no identity in.
//
// Imports: projections (the state), ledger (privilege constants) and
// api/wire (command codes and scopes), nothing else of the module, and
// never net/http.
package access
