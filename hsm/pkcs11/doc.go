// Package pkcs11 is the PKCS#11 HSM backend: an AES-256 key on a token
// (a hardware HSM, a smart card, SoftHSM2) seals the Root Encryption Key.
// It is the only package that uses cgo, through github.com/miekg/pkcs11.
//
// Configuration: the module (library) path, the token by label or slot,
// the user PIN (read by cmd from an environment variable or a file, never
// a flag) and the key's CKA_LABEL. CreateKey makes the key; Open uses it.
//
// Blob layouts (see wrap.go for the full description):
//
//	AES-GCM (0x01): | 0x01 | IV 12 | ciphertext | tag 16 |  AAD = 0x01 ‖ aad
//	AES-KWP (0x02): | 0x02 | AES-KWP(SHA-256(0x02 ‖ aad) ‖ salt 12 ‖ u32BE len ‖ pt ‖ zero pad) |
//
// Wrap uses AES-GCM when the token offers CKM_AES_GCM and the key allows
// CKA_ENCRYPT and CKA_DECRYPT; otherwise AES-KWP (CKM_AES_KEY_WRAP_PAD)
// through C_WrapKey and C_UnwrapKey of a temporary session object, with
// aad bound by the hash. Unwrap follows the blob's format byte.
//
// Invariants:
//
//   - The key is generated on the token as a sensitive, non-extractable
//     token object; its value never reaches this process.
//   - The PIN never appears in errors, String, GoString or LogValue of a
//     Config. Errors name the module, token and key labels, which are not
//     secret. KeyID is "pkcs11:<token label>/<key label>".
//   - Open succeeds only after a Wrap/Unwrap self-test, so a server never
//     starts on a token it cannot use. Its errors wrap one sentinel per
//     cause: ErrConfig, ErrModule, ErrTokenNotFound, ErrPIN,
//     ErrKeyNotFound, ErrAmbiguous, ErrUnsupported.
//   - Unwrap returns hsm.ErrUnseal only when the token rejects the blob or
//     the associated data differs; a failing token or a closed HSM gives
//     other errors.
//   - An HSM holds a login session and a pool of PoolSize sessions; an
//     operation takes a session from the pool, so at most PoolSize run at
//     once and each session is used by one goroutine at a time. A session
//     that returned an unexpected error is closed and reopened on next use.
//   - Close waits for running operations and is idempotent; Wrap and
//     Unwrap then return ErrClosed.
//
// PKCS#11 keeps initialisation and login per process, not per handle
// (PKCS#11 v2.40 §5.4, §5.6). So a process-wide table counts the users of
// each module: the first Open initialises it, the last Close logs out and
// finalises it. Two HSMs on the same token share the login; the second
// Open's C_Login returns CKR_USER_ALREADY_LOGGED_IN, which cannot check
// its PIN. One process normally opens one HSM.
//
// Cleared buffers are best effort: miekg/pkcs11 copies data through C
// memory that it frees without clearing.
package pkcs11
