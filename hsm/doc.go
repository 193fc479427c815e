// Package hsm is kmsledger's root of trust and the only package that
// touches cleartext key material.
//
// The key hierarchy has three levels:
//
//	HSM key (Wrapper: softkey, PKCS#11, remote kmsledger)
//	  └─ seals the Root Encryption Key (REK, a Tink AES-256-GCM keyset)
//	       └─ seals every key version (32 bytes of material and its type,
//	          an AES-256-GCM or ChaCha20-Poly1305 Tink key; a cluster seals
//	          them as a one-key Tink keyset, a single node alone)
//	            └─ encrypts data keys and client payloads (Key)
//
// Invariants:
//
//   - Key material is born (GenerateVersion) or imported (ImportVersion)
//     inside this package and leaves it only sealed under the REK. No
//     exported function returns raw key material; Key.GenerateDataKey
//     returns fresh random data keys, never the version's material.
//   - Every sealed blob is bound by associated data to its place: a key
//     version to its enclave, key name and version (VersionAAD); the REK to
//     the HSM key. A blob moved elsewhere fails to open with ErrUnseal.
//   - REK-sealed key versions and REK.Seal blobs use separate domains, so
//     REK.Unseal can never be used to read a key version's material.
//   - REK.Unseal returns plaintext secrets (root API key, checkpoint
//     signing seed) only for a SecretAccess from InsecureSecretAccess, so
//     every such read is one grep away.
//   - Client ciphertexts are self-describing: they start with a 6-byte
//     header (magic, format, key version) that is authenticated as
//     associated data, so the version cannot be swapped. New ciphertexts
//     use format 0x02 (XAES-256-GCM / XChaCha20-Poly1305, 192-bit random
//     nonces: no per-version message limit); format 0x01 still decrypts.
//   - Every data-key decrypt failure is reported as ErrDecrypt and nothing
//     more, so callers cannot build a decryption oracle from error detail.
//   - Only this package (and its subpackages) import crypto/aes,
//     crypto/cipher and Tink.
//
// Secrets are cleared with clear() once they are no longer needed. This is
// best effort: the Go runtime may have copied them (stack growth, GC), and
// Tink keeps its own copies inside its primitives. An unsealed version
// (Key) holds its material and derived 32-byte keys, and makes its ciphers
// per call; the REK keeps the expanded format-0x02 keys of the 4,096
// versions used last (k2blocks.go) until another version takes their slot
// or Key.Forget drops them.
package hsm
