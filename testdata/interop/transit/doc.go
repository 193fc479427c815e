// Package transitinterop drives kmsledger's Vault Transit API with the
// official Go clients github.com/hashicorp/vault/api (v1.23.0, what
// SeaweedFS, sops and vault-kubernetes-kms pin) and
// github.com/openbao/openbao/api/v2: every endpoint, the error cases,
// batches with partial failures, logins, token expiry and revocation,
// against a real `kmsledger server --dev` (which serves the mount
// "transit" for its dev enclave). Both clients live only in this test
// module.
package transitinterop
