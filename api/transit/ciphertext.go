package transit

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Errors of ParseCiphertext and ParseHMAC, in Vault's words (clients and
// people match them).
var (
	ErrNoPrefix      = errors.New("invalid ciphertext: no prefix")
	ErrFields        = errors.New("invalid ciphertext: wrong number of fields")
	ErrVersionDecode = errors.New("invalid ciphertext: version number could not be decoded")
	ErrBase64        = errors.New("invalid ciphertext: could not decode base64")
)

const prefix = "vault:v"

// FormatCiphertext returns "vault:v<version>:" ‖ base64(body), the text of
// a ciphertext, an HMAC or a signature.
func FormatCiphertext(version uint32, body []byte) string {
	return prefix + strconv.FormatUint(uint64(version), 10) + ":" + base64.StdEncoding.EncodeToString(body)
}

// SplitCiphertext splits "vault:v<version>:<base64>" into the version and
// the encoded body (DecodeBody), so that the version is checked first, as
// Vault does. Version 0 is read as 1.
func SplitCiphertext(s string) (version uint32, encoded string, err error) {
	return split(s)
}

// DecodeBody decodes the body of a ciphertext; ErrBase64 if it is not
// standard base64.
func DecodeBody(encoded string) ([]byte, error) {
	body, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, ErrBase64
	}
	return body, nil
}

// ParseHMAC is ParseCiphertext for "vault:v<N>:<base64 HMAC>", with the
// HMAC texts of Vault's verify.
func ParseHMAC(s string) (version uint32, mac []byte, err error) {
	v, b64, err := split(s)
	switch {
	case errors.Is(err, ErrNoPrefix):
		return 0, nil, errors.New("invalid HMAC to verify: no prefix")
	case errors.Is(err, ErrFields):
		return 0, nil, errors.New("invalid HMAC: wrong number of fields")
	case err != nil:
		return 0, nil, errors.New("invalid HMAC: version number could not be decoded")
	}
	mac, err = base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return 0, nil, errors.New("invalid HMAC: could not decode base64")
	}
	return v, mac, nil
}

func split(s string) (uint32, string, error) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return 0, "", ErrNoPrefix
	}
	num, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, "", ErrFields
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil || num == "" || num[0] == '+' {
		return 0, "", ErrVersionDecode
	}
	if n == 0 {
		n = 1
	}
	return uint32(n), b64, nil
}

// Key types: the Transit names of the kmsledger key types.
const (
	TypeAES256   = "aes256-gcm96"
	TypeChaCha20 = "chacha20-poly1305"
)

// KeyType maps a Transit key type to a kmsledger one ("AES256",
// "ChaCha20"); ok is false for a type kmsledger keys cannot be.
func KeyType(t string) (string, bool) {
	switch t {
	case TypeAES256:
		return "AES256", true
	case TypeChaCha20:
		return "ChaCha20", true
	}
	return "", false
}

// TransitType is the Transit name of a kmsledger key type.
func TransitType(kt string) string {
	if kt == "ChaCha20" {
		return TypeChaCha20
	}
	return TypeAES256
}
