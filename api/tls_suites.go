package api

import "crypto/tls"

// tls12Suites are the TLS 1.2 cipher suites the server accepts: ECDHE key
// exchange (forward secrecy) with an AEAD only, AES-GCM or
// ChaCha20-Poly1305. Go's defaults would also accept ECDHE with AES-CBC and
// HMAC-SHA1 (MAC-then-encrypt, Lucky13-style padding oracles); no
// supported client needs those. TLS 1.3 suites are not configurable and
// all AEAD. Order does not matter: Go picks by its own preference.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}
