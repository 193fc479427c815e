package wire

// API keys and identities of the kms API.
//
// An API key is a private key in text form:
//
//	k1:<base64url_nopad(seed)>     32-byte Ed25519 seed (RFC 8032 §5.1.5)
//	k2:<base64url_nopad(scalar)>   big-endian ECDSA scalar (SEC 1 §2.3.6 raw);
//	                               32 bytes P-256, 48 P-384, 66 P-521
//
// The identity of a public key is
//
//	"h1:" + base64url_nopad(SHA-256(DER SubjectPublicKeyInfo))   (46 characters)
//
// A client authenticates with a self-signed certificate for its API key; the
// server ignores everything but the certificate's public key.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"
)

// ErrInvalidAPIKey is returned by ParseAPIKey.
var ErrInvalidAPIKey = errors.New("wire: invalid API key")

// Identity prefix and the validity of generated client certificates.
const (
	identityPrefix = "h1:"

	// ClientCertValidity is the lifetime of a certificate from
	// ClientCertificate, as the kms-go SDK uses.
	ClientCertValidity = 90 * 24 * time.Hour
)

// ParseAPIKey parses a "k1:" (Ed25519) or "k2:" (ECDSA) API key. The
// returned signer is an ed25519.PrivateKey or an *ecdsa.PrivateKey. Errors
// wrap ErrInvalidAPIKey and never contain key material.
func ParseAPIKey(s string) (crypto.Signer, error) {
	prefix, encoded, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("%w: missing k1:/k2: prefix", ErrInvalidAPIKey)
	}
	raw, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url without padding", ErrInvalidAPIKey)
	}
	switch prefix {
	case "k1":
		if len(raw) != ed25519.SeedSize {
			return nil, fmt.Errorf("%w: k1 key is %d bytes, want %d", ErrInvalidAPIKey, len(raw), ed25519.SeedSize)
		}
		return ed25519.NewKeyFromSeed(raw), nil
	case "k2":
		var curve elliptic.Curve
		switch len(raw) {
		case 32:
			curve = elliptic.P256()
		case 48:
			curve = elliptic.P384()
		case 66:
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("%w: k2 key of %d bytes matches no curve", ErrInvalidAPIKey, len(raw))
		}
		key, err := ecdsa.ParseRawPrivateKey(curve, raw)
		if err != nil {
			return nil, fmt.Errorf("%w: k2 scalar out of range", ErrInvalidAPIKey)
		}
		return key, nil
	}
	return nil, fmt.Errorf("%w: unknown prefix %q", ErrInvalidAPIKey, prefix)
}

// GenerateAPIKey returns a new "k1:" API key whose 32-byte Ed25519 seed is
// read from random (use crypto/rand.Reader).
func GenerateAPIKey(random io.Reader) (string, error) {
	seed := make([]byte, ed25519.SeedSize)
	defer clear(seed)
	if _, err := io.ReadFull(random, seed); err != nil {
		return "", fmt.Errorf("wire: generate API key: %w", err)
	}
	return "k1:" + base64.RawURLEncoding.EncodeToString(seed), nil
}

// Identity returns the identity of a public key:
// "h1:" + base64url_nopad(SHA-256(DER SubjectPublicKeyInfo)).
func Identity(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("wire: identity: %w", err)
	}
	return identityOf(der), nil
}

// IdentityFromCert returns the identity of the certificate's public key,
// computed from its raw SubjectPublicKeyInfo.
func IdentityFromCert(c *x509.Certificate) string {
	return identityOf(c.RawSubjectPublicKeyInfo)
}

func identityOf(spki []byte) string {
	sum := sha256.Sum256(spki)
	return identityPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

// ValidIdentity reports whether s is "h1:" followed by base64url (no
// padding) of exactly 32 bytes. The empty string is not valid.
func ValidIdentity(s string) bool {
	enc, ok := strings.CutPrefix(s, identityPrefix)
	if !ok || len(enc) != base64.RawURLEncoding.EncodedLen(sha256.Size) {
		return false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	return err == nil && len(raw) == sha256.Size
}

// ClientCertificate returns a self-signed TLS client certificate for key:
// random 128-bit serial, CN = the key's identity, valid from now for
// ClientCertValidity, key usage DigitalSignature, extended key usage
// ClientAuth, not a CA.
func ClientCertificate(key crypto.Signer) (tls.Certificate, error) {
	id, err := Identity(key.Public())
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("wire: client certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: id},
		NotBefore:             now,
		NotAfter:              now.Add(ClientCertValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("wire: client certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("wire: client certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
