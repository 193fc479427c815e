// Package soak runs a legitimate kms-go client against a real kmsledger
// server process while hostile connections send garbage, oversized, slow
// and unauthenticated requests, and checks that every legitimate call
// succeeds and the server's memory stays bounded.
package soak
