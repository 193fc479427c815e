package wire

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAPIKeyVector(t *testing.T) {
	t.Parallel()
	const (
		apiKey   = "k1:2COl4dS3G-cjHa3Q-9fUmOrq8yL0Q7a12HH_Yi0oiLw"
		pubHex   = "445fbd4d49da724b58adebf6d57586f0a231d5c540604f1b494a7a0c02e298fa"
		identity = "h1:1XtC8x9-VpkRibo1WuzcIAXzrpKIxLjlMErH9zkZkQE"
	)
	key, err := ParseAPIKey(apiKey)
	if err != nil {
		t.Fatalf("ParseAPIKey err = %v", err)
	}
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok {
		t.Fatalf("public key is %T, want ed25519.PublicKey", key.Public())
	}
	if got := hex.EncodeToString(pub); got != pubHex {
		t.Fatalf("public key = %s, want %s", got, pubHex)
	}
	id, err := Identity(pub)
	if err != nil || id != identity {
		t.Fatalf("Identity = %q, %v; want %q", id, err, identity)
	}
	if len(id) != 46 || !ValidIdentity(id) {
		t.Fatalf("identity %q: len %d, ValidIdentity %v", id, len(id), ValidIdentity(id))
	}
	cert, err := ClientCertificate(key)
	if err != nil {
		t.Fatalf("ClientCertificate err = %v", err)
	}
	if got := IdentityFromCert(cert.Leaf); got != identity {
		t.Fatalf("IdentityFromCert = %q, want %q", got, identity)
	}
}

func TestParseAPIKeyECDSA(t *testing.T) {
	t.Parallel()
	tests := []struct {
		size  int
		curve elliptic.Curve
	}{
		{32, elliptic.P256()},
		{48, elliptic.P384()},
		{66, elliptic.P521()},
	}
	for _, tt := range tests {
		t.Run(tt.curve.Params().Name, func(t *testing.T) {
			t.Parallel()
			scalar := make([]byte, tt.size)
			scalar[tt.size-1] = 42
			key, err := ParseAPIKey("k2:" + base64.RawURLEncoding.EncodeToString(scalar))
			if err != nil {
				t.Fatalf("ParseAPIKey err = %v", err)
			}
			ec, ok := key.(*ecdsa.PrivateKey)
			if !ok || ec.Curve != tt.curve {
				t.Fatalf("key = %T on %v, want ECDSA on %s", key, ec, tt.curve.Params().Name)
			}
			raw, err := ec.Bytes()
			if err != nil || !bytes.Equal(raw, scalar) {
				t.Fatalf("scalar round trip failed: %v", err)
			}
			cert, err := ClientCertificate(key)
			if err != nil {
				t.Fatalf("ClientCertificate err = %v", err)
			}
			id, _ := Identity(key.Public())
			if IdentityFromCert(cert.Leaf) != id {
				t.Fatal("certificate identity differs from key identity")
			}
		})
	}
}

func TestParseAPIKeyErrors(t *testing.T) {
	t.Parallel()
	b64 := func(n int) string { return base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{1}, n)) }
	tests := []struct{ name, key string }{
		{"Empty", ""},
		{"NoPrefix", b64(32)},
		{"UnknownPrefix", "k3:" + b64(32)},
		{"Padded", "k1:" + base64.URLEncoding.EncodeToString(make([]byte, 32))},
		{"StdAlphabet", "k1:" + strings.Repeat("+", 43)},
		{"K1Short", "k1:" + b64(31)},
		{"K1Long", "k1:" + b64(33)},
		{"K2BadSize", "k2:" + b64(40)},
		{"K2Zero", "k2:" + base64.RawURLEncoding.EncodeToString(make([]byte, 32))},
		{"K2TooLarge", "k2:" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ParseAPIKey(tt.key); !errors.Is(err, ErrInvalidAPIKey) {
				t.Fatalf("ParseAPIKey(%q) err = %v, want ErrInvalidAPIKey", tt.key, err)
			}
		})
	}
}

func TestGenerateAPIKey(t *testing.T) {
	t.Parallel()
	seed := bytes.Repeat([]byte{7}, 32)
	k, err := GenerateAPIKey(bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	if want := "k1:" + base64.RawURLEncoding.EncodeToString(seed); k != want {
		t.Fatalf("GenerateAPIKey = %q, want %q", k, want)
	}
	if _, err := ParseAPIKey(k); err != nil {
		t.Fatalf("ParseAPIKey(GenerateAPIKey()) err = %v", err)
	}
	if _, err := GenerateAPIKey(bytes.NewReader(seed[:10])); err == nil {
		t.Fatal("GenerateAPIKey with a short reader: err = nil")
	}
}

func TestValidIdentity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   string
		want bool
	}{
		{"h1:1XtC8x9-VpkRibo1WuzcIAXzrpKIxLjlMErH9zkZkQE", true},
		{"h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", true},
		{"", false},
		{"h1:", false},
		{"h2:1XtC8x9-VpkRibo1WuzcIAXzrpKIxLjlMErH9zkZkQE", false},
		{"1XtC8x9-VpkRibo1WuzcIAXzrpKIxLjlMErH9zkZkQE", false},
		{"h1:1XtC8x9-VpkRibo1WuzcIAXzrpKIxLjlMErH9zkZkQE=", false},
		{"h1:1XtC8x9+VpkRibo1WuzcIAXzrpKIxLjlMErH9zkZkQE", false},
		{"h1:1XtC8x9-VpkRibo1WuzcIAXzrpKIxLjlMErH9zkZkQ", false},
		{"h1:1XtC8x9-VpkRibo1WuzcIAXzrpKIxLjlMErH9zkZkQEA", false},
	}
	for _, tt := range tests {
		if got := ValidIdentity(tt.id); got != tt.want {
			t.Errorf("ValidIdentity(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestClientCertificate(t *testing.T) {
	t.Parallel()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	before := time.Now().Add(-time.Second)
	c1, err := ClientCertificate(key)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := ClientCertificate(key)
	if err != nil {
		t.Fatal(err)
	}
	leaf := c1.Leaf
	id, _ := Identity(key.Public())
	switch {
	case leaf.Subject.CommonName != id:
		t.Errorf("CN = %q, want %q", leaf.Subject.CommonName, id)
	case leaf.NotBefore.Before(before.Truncate(time.Second)):
		t.Errorf("NotBefore = %v, want >= %v", leaf.NotBefore, before)
	case leaf.NotAfter.Sub(leaf.NotBefore) != ClientCertValidity:
		t.Errorf("validity = %v, want %v", leaf.NotAfter.Sub(leaf.NotBefore), ClientCertValidity)
	case leaf.KeyUsage != x509.KeyUsageDigitalSignature:
		t.Errorf("KeyUsage = %v, want DigitalSignature", leaf.KeyUsage)
	case len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth:
		t.Errorf("ExtKeyUsage = %v, want [ClientAuth]", leaf.ExtKeyUsage)
	case leaf.IsCA:
		t.Error("IsCA = true, want false")
	case len(leaf.DNSNames)+len(leaf.IPAddresses) != 0:
		t.Error("certificate has SANs, want none")
	case leaf.SerialNumber.BitLen() > 128 || leaf.SerialNumber.Cmp(c2.Leaf.SerialNumber) == 0:
		t.Errorf("serials %v and %v: want distinct, at most 128 bits", leaf.SerialNumber, c2.Leaf.SerialNumber)
	}
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Errorf("certificate is not self-signed: %v", err)
	}
}
