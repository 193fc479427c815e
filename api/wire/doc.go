// Package wire implements the byte-level codecs of the MinIO KMS (minkms)
// protocol that kmsledger speaks: request and response framing, command codes,
// the proto3 messages carried in frames, and the API-key / identity scheme used
// for mutual TLS.
//
// The package is pure: it does no I/O and imports no net/http. Both the server
// (package api) and the Go client (package client) build on it.
//
// Invariants:
//
//   - A body is a sequence of frames, each `uint16 BE command ‖ uint32 BE N ‖ N
//     bytes`. DecodeFrames accepts 1 to MaxFrames frames and never reads past
//     the body; the Body of a decoded Frame aliases the input.
//   - Messages are encoded as proto3 would: fields holding their default value
//     are omitted, repeated and map fields are written in a deterministic
//     (sorted) order, and a zero time.Time or time.Duration is omitted.
//   - Decoding skips unknown fields (and known fields with an unexpected wire
//     type, as protobuf-go does), keeps the last value of a repeated scalar
//     field, rejects malformed input and strings that are not valid UTF-8 with
//     an error wrapping ErrMalformed, and never panics. Decoded byte slices are
//     copies, never aliases of the input.
//   - Identities are "h1:" + base64url_nopad(SHA-256(DER SubjectPublicKeyInfo)),
//     always 46 characters.
//
// Reference: the kms API of MinIO AIStor Key Manager (minkms), as the
// kms-go SDK (github.com/minio/kms-go/kms) speaks it: framing, commands and
// their messages, key types.
package wire
