package api

import (
	"net/http"

	"github.com/kmsledger/kmsledger/api/wire"
)

// callerOf returns the h1: identity of the request's client, or "" without
// a client certificate. It is the one place every API (kms, admin, HSM,
// time travel, audit, KES) takes its caller from.
//
// The caller is the first certificate of the client's chain: the TLS
// handshake proves possession of that certificate's key and of no other.
// Any further certificate is a claim anyone can make (it may carry
// someone else's public key), so it never names the caller.
func callerOf(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	return wire.IdentityFromCert(r.TLS.PeerCertificates[0])
}
