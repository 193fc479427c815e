package hsm

import "errors"

// SecretAccess is the token REK.Unseal requires before it returns a
// plaintext secret (the root API key, a checkpoint signing seed). It plays
// the part of Tink's insecuresecretdataaccess.Token: the only way to get a
// usable one is InsecureSecretAccess, so
//
//	grep -rn "InsecureSecretAccess()" --include=*.go .
//
// lists every place that reads a REK-sealed secret in plaintext. The zero
// value grants nothing: REK.Unseal refuses it with an error (not ErrUnseal).
type SecretAccess struct {
	granted bool
}

// InsecureSecretAccess returns the token that lets its caller read a
// REK-sealed secret in plaintext. Call it at the point of use, never store
// or pass the token around, so each read stays visible in a grep.
func InsecureSecretAccess() SecretAccess { return SecretAccess{granted: true} }

// errNoSecretAccess means REK.Unseal was called with a zero SecretAccess
// instead of one from InsecureSecretAccess: a programming error, not a
// fault of the sealed blob, so it is not a sentinel callers branch on.
var errNoSecretAccess = errors.New("hsm: reading a sealed secret needs hsm.InsecureSecretAccess()")
