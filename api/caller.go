package api

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"sync/atomic"

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
//
// A connection's certificate never changes (no renegotiation), so the
// identity is computed once per connection (connContext) and reused for
// each of its requests while the leaf is the very same certificate.
func callerOf(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	leaf := r.TLS.PeerCertificates[0]
	cc, ok := r.Context().Value(connCallerKey{}).(*connCaller)
	if !ok {
		return wire.IdentityFromCert(leaf)
	}
	if c := cc.last.Load(); c != nil && c.leaf == leaf {
		return c.id
	}
	id := wire.IdentityFromCert(leaf)
	cc.last.Store(&cachedCaller{leaf: leaf, id: id})
	return id
}

// connCallerKey is the context key of a connection's connCaller.
type connCallerKey struct{}

// connCaller holds the identity of a connection's client certificate.
type connCaller struct{ last atomic.Pointer[cachedCaller] }

type cachedCaller struct {
	leaf *x509.Certificate
	id   string
}

// connContext gives every connection its identity cache
// (http.Server.ConnContext).
func connContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connCallerKey{}, new(connCaller))
}
