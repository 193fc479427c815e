package hsm

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"
)

// Vectors of the Transit wire contract (the project's Transit spec §5.6),
// decrypted there by the keysutil packages of Vault and OpenBao: version
// key K = 00 01 … 1f, HMAC key H = 40 41 … 5f, nonce a0 … ab.
func TestTransitVectors(t *testing.T) {
	t.Parallel()
	k := seq(0x00, 32)
	nonce := seq(0xa0, 12)
	pt := []byte("hello transit")
	context := []byte(`{"aws:s3:arn":"arn:aws:s3:::bucket/object"}`)
	derived, err := transitDerive(k, context)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(derived); got != "1a47d03bb40f462ae90c12cbafa6b90ea929a5b46ea7abc0d601b437fe0c4aa6" {
		t.Errorf("transitDerive(K, context) = %s, want the vector", got)
	}
	for _, c := range []struct {
		name string
		kt   KeyType
		key  []byte
		ad   []byte
		want string
	}{
		{"aes256-gcm96", AES256, k, nil, "oKGio6Slpqeoqaqrjn0QQSrrds0DC/S6c1kUYCTjGz8+7wWBneboCMY="},
		{"aes256-gcm96+ad", AES256, k, []byte("associated"), "oKGio6Slpqeoqaqrjn0QQSrrds0DC/S6czz+FQxB+EWPoXXx5jifBLQ="},
		{"aes256-gcm96 derived", AES256, derived, nil, "oKGio6Slpqeoqaqr8sG2GihQ1LB7//FiC2lE22NfMd6IA9w1szYnDt0="},
		{"chacha20-poly1305", ChaCha20, k, nil, "oKGio6SlpqeoqaqrZM4UMyLGtt/BYYB9iFRmmEZiKJfMdcL1dzvNWYQ="},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := transitAEADOf(c.kt, c.key)
			if err != nil {
				t.Fatal(err)
			}
			got := base64.StdEncoding.EncodeToString(a.Seal(bytes.Clone(nonce), nonce, pt, c.ad))
			if got != c.want {
				t.Errorf("seal = %s, want %s", got, c.want)
			}
		})
	}
	m := hmac.New(sha256.New, seq(0x40, 32))
	m.Write(pt)
	mk := &Key{hmacKey: (*[macKeyLen]byte)(seq(0x40, 32))}
	got, err := mk.TransitHMAC("sha2-256", pt)
	if err != nil || base64.StdEncoding.EncodeToString(got) != "gWh5drr5pZ9tIhqpadpwTG0rw2XfEc2AstpionaHEcQ=" {
		t.Errorf("TransitHMAC(sha2-256) = %x, %v, want the vector", got, err)
	}
}

func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}
