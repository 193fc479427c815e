// Package importrules holds no code: its test keeps the import rules of
// the module, reading the package graph from `go list -deps -json ./...`.
//
// The rules (see importrules_test.go, one table row each):
//   - only ledger (and the packages below it) imports NATS;
//   - ledger imports no other layer of this module;
//   - hsm imports no other layer, except the protocol packages api/client
//     and api/wire (hsm/remotekms is the client of another kmsledger);
//   - api/wire is a leaf: the standard library and protowire only;
//   - api/client imports only api/wire and the standard library;
//   - projections and commands import nothing from api but api/wire;
//   - only api, cmd and test harnesses (packages named …test) import the
//     server package api;
//   - outside cmd, only test harnesses import a package below cmd, and no
//     package imports a main package.
//   - cmd/clientcmd (the client commands) imports only api/client and
//     api/wire of this module: the client never links the server.
//
// It may import nothing; its test uses the standard library only.
package importrules
