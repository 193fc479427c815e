// Package remotekms is the remote HSM backend: a key on another kmsledger
// (or any server speaking the kms API) seals the Root Encryption Key, in
// the manner of "Store HSM on Key Manager". Wrap is the remote KEY:ENCRYPT
// and Unwrap the remote KEY:DECRYPT, through package api/client, which
// starts each call at a random endpoint and retries transport errors on
// the next ones.
//
// Blob layout (see remotekms.go):
//
//	| 0x01 | remote ciphertext |   remote associated data = 0x01 ‖ aad
//
// Invariants:
//
//   - The remote key never leaves the remote server; this process sees
//     only ciphertexts and the REK it unwraps.
//   - The API key never appears in errors, String, GoString or LogValue of
//     a Config. KeyID is "kmsledger:<enclave>/<key>"; errors also name the
//     endpoints.
//   - Open succeeds only after an Encrypt/Decrypt self-test, so a server
//     never starts on a remote key it cannot use.
//   - Unwrap returns hsm.ErrUnseal only when the remote server answers
//     "invalid ciphertext" (another key, a modified blob, other aad) or
//     the blob has the wrong format byte. An unreachable or failing server
//     (transport errors on every endpoint, timeouts, 5xx) is
//     ErrUnreachable; a missing enclave or key ErrKeyNotFound; a refused
//     API key ErrPermission. None of them is ever ErrUnseal.
//   - Decrypt is sent with version 0, so the remote server takes the
//     version from its ciphertext and rotating the remote key keeps old
//     blobs readable.
//   - Close waits for running calls and is idempotent; Wrap and Unwrap
//     then return ErrClosed.
package remotekms
