// Package softkey is the software HSM backend: a 256-bit AES key given as a
// string "hsm:aes256:<standard base64 of 32 bytes>" that seals the Root
// Encryption Key with AES-256-GCM.
//
// Invariants:
//
//   - The key bytes never appear in errors, String, GoString, LogValue or
//     JSON; Parse's errors describe the problem without echoing the input.
//   - KeyID is a truncated hash of a label and the key: stable, and safe to
//     log.
//   - Every Wrap uses a fresh random 96-bit nonce from crypto/rand.
//
// A softkey is only as safe as the place it is kept (a file or environment
// variable); use a PKCS#11 token where that matters.
package softkey
