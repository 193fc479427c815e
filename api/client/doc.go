// Package client is kmsledger's Go client for the MinIO KMS (minkms) wire
// protocol (the kms API; package wire documents it). It speaks the same protocol as the
// kms-go SDK, so it can drive kmsledger or any other minkms-compatible server,
// but it depends only on package wire.
//
// Invariants:
//
//   - Every request goes over HTTPS (any http:// or https:// prefix on an
//     endpoint is stripped) and presents a self-signed client certificate
//     derived from the API key, whose identity is Client.Identity.
//   - Each request starts at a random host and skips hosts that failed in the
//     last 30 seconds. Only transport errors (dial, TLS, connection reset) are
//     retried, on the next hosts in list order; HTTP errors never are.
//   - Only status 200 is success. Any other status becomes an *Error holding
//     the status and the server's message, comparable with errors.Is against
//     the sentinels ErrKeyNotFound, ErrPermission, ... .
//   - A successful command response must carry a Content-Length and exactly
//     one frame per request frame with the same command code; anything else
//     fails with an error wrapping ErrProtocol.
package client
