// Package sizerules holds no code: its test keeps the size limits of the
// module's Go code, read with go/parser from every .go file of the module
// (not testdata, not nested modules such as testdata/interop):
//   - no non-test file over 500 lines;
//   - no function (test functions included) over 80 lines, from its func
//     keyword to its closing brace.
//
// A file or function over the limit is split where it has seams; the
// test lists every offender with its size.
//
// It may import nothing; its test uses the standard library only.
package sizerules
