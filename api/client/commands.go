package client

import (
	"context"
	"fmt"

	"github.com/kmsledger/kmsledger/api/wire"
)

// messagePtr is a pointer to a wire message value type T.
type messagePtr[T any] interface {
	*T
	wire.Message
}

// write sends one write command; the response body is ignored.
func (c *Client) write(ctx context.Context, enclave string, cmd wire.Command, req wire.Message) error {
	_, err := c.Send(ctx, enclave, []wire.Frame{{Cmd: cmd, Body: req.MarshalProto()}})
	return err
}

// query sends one command frame and decodes the single response frame,
// which must carry the same command code.
func query[T any, P messagePtr[T]](ctx context.Context, c *Client, enclave string, cmd wire.Command, req wire.Message) (*T, error) {
	frames, err := c.Send(ctx, enclave, []wire.Frame{{Cmd: cmd, Body: req.MarshalProto()}})
	if err != nil {
		return nil, err
	}
	if len(frames) != 1 {
		return nil, fmt.Errorf("%w: %v: got %d response frames, want 1", ErrProtocol, cmd, len(frames))
	}
	if frames[0].Cmd != cmd {
		return nil, fmt.Errorf("%w: %v: response frame has command %v", ErrProtocol, cmd, frames[0].Cmd)
	}
	resp := new(T)
	if err := P(resp).UnmarshalProto(frames[0].Body); err != nil {
		return nil, fmt.Errorf("%w: %v: %w", ErrProtocol, cmd, err)
	}
	return resp, nil
}

// validateKey applies the checks the kms-go SDK applies to a key status:
// a known type and an empty or valid creator identity.
func validateKey(k *wire.KeyStatusResponse) error {
	if k.Type != wire.KeyTypeAES256 && k.Type != wire.KeyTypeChaCha20 {
		return fmt.Errorf("%w: key %q has invalid type %q", ErrProtocol, k.Name, k.Type)
	}
	if k.CreatedBy != "" && !wire.ValidIdentity(k.CreatedBy) {
		return fmt.Errorf("%w: key %q has invalid creator %q", ErrProtocol, k.Name, k.CreatedBy)
	}
	return nil
}

// ClusterStatus returns the status of the cluster nodes (CLUSTER:STATUS).
func (c *Client) ClusterStatus(ctx context.Context) (*wire.ClusterStatusResponse, error) {
	return query[wire.ClusterStatusResponse](ctx, c, "", wire.CmdClusterStatus, &wire.ClusterStatusRequest{})
}

// CreateEnclave creates an enclave (ENCLAVE:CREATE). It returns an error
// matching ErrEnclaveExists if it exists.
func (c *Client) CreateEnclave(ctx context.Context, name string) error {
	return c.write(ctx, "", wire.CmdEnclaveCreate, &wire.CreateEnclaveRequest{Name: name})
}

// DeleteEnclave deletes an enclave (ENCLAVE:DELETE). It returns an error
// matching ErrEnclaveNotFound if there is none.
func (c *Client) DeleteEnclave(ctx context.Context, name string) error {
	return c.write(ctx, "", wire.CmdEnclaveDelete, &wire.DeleteEnclaveRequest{Name: name})
}

// EnclaveStatus returns the status of an enclave (ENCLAVE:STATUS).
func (c *Client) EnclaveStatus(ctx context.Context, name string) (*wire.EnclaveStatusResponse, error) {
	return query[wire.EnclaveStatusResponse](ctx, c, "", wire.CmdEnclaveStatus, &wire.EnclaveStatusRequest{Name: name})
}

// ListEnclaves returns one page of enclaves whose names start with prefix,
// starting at continueAt (inclusive); limit 0 lets the server choose.
func (c *Client) ListEnclaves(ctx context.Context, prefix, continueAt string, limit uint32) (*wire.ListEnclavesResponse, error) {
	req := &wire.ListRequest{Prefix: prefix, ContinueAt: continueAt, Limit: limit}
	return query[wire.ListEnclavesResponse](ctx, c, "", wire.CmdEnclaveList, req)
}

// CreateKey creates a key (KEY:CREATE) of type typ ("AES256", "ChaCha20" or
// "" for the server's choice), or adds a version to an existing key when
// addVersion is set. It returns an error matching ErrKeyExists if the key
// exists and addVersion is not set.
func (c *Client) CreateKey(ctx context.Context, enclave, name, typ string, addVersion bool) error {
	return c.write(ctx, enclave, wire.CmdKeyCreate, &wire.CreateKeyRequest{Name: name, Type: typ, AddVersion: addVersion})
}

// ImportKey imports key material as a new key (KEY:IMPORT).
func (c *Client) ImportKey(ctx context.Context, enclave, name, typ string, key []byte) error {
	return c.write(ctx, enclave, wire.CmdKeyImport, &wire.ImportKeyRequest{Name: name, Type: typ, Key: key})
}

// DeleteKey deletes one version of a key (0 = the latest), or the whole key
// when all is set (KEY:DELETE).
func (c *Client) DeleteKey(ctx context.Context, enclave, name string, version uint32, all bool) error {
	return c.write(ctx, enclave, wire.CmdKeyDelete, &wire.DeleteKeyRequest{Name: name, Version: version, AllVersions: all})
}

// KeyStatus returns the status of a key version, 0 = the latest (KEY:STATUS).
func (c *Client) KeyStatus(ctx context.Context, enclave, name string, version uint32) (*wire.KeyStatusResponse, error) {
	k, err := query[wire.KeyStatusResponse](ctx, c, enclave, wire.CmdKeyStatus, &wire.KeyStatusRequest{Name: name, Version: version})
	if err != nil {
		return nil, err
	}
	if err := validateKey(k); err != nil {
		return nil, err
	}
	return k, nil
}

// ListKeys returns one page of keys (KEY:LIST); see ListEnclaves.
func (c *Client) ListKeys(ctx context.Context, enclave, prefix, continueAt string, limit uint32) (*wire.ListKeysResponse, error) {
	req := &wire.ListRequest{Prefix: prefix, ContinueAt: continueAt, Limit: limit}
	resp, err := query[wire.ListKeysResponse](ctx, c, enclave, wire.CmdKeyList, req)
	if err != nil {
		return nil, err
	}
	for i := range resp.Keys {
		if err := validateKey(&resp.Keys[i]); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// Encrypt encrypts plaintext with a key version, 0 = the latest, binding
// the associated data ad (KEY:ENCRYPT).
func (c *Client) Encrypt(ctx context.Context, enclave, name string, version uint32, plaintext, ad []byte) (*wire.EncryptResponse, error) {
	req := &wire.EncryptRequest{Name: name, Version: version, Plaintext: plaintext, AssociatedData: ad}
	return query[wire.EncryptResponse](ctx, c, enclave, wire.CmdKeyEncrypt, req)
}

// Decrypt decrypts ciphertext with a key (KEY:DECRYPT); version 0 lets the
// server take the version from the ciphertext. It returns an error matching
// ErrDecrypt if the ciphertext or ad is wrong.
func (c *Client) Decrypt(ctx context.Context, enclave, name string, version uint32, ciphertext, ad []byte) (*wire.DecryptResponse, error) {
	req := &wire.DecryptRequest{Name: name, Version: version, Ciphertext: ciphertext, AssociatedData: ad}
	return query[wire.DecryptResponse](ctx, c, enclave, wire.CmdKeyDecrypt, req)
}

// GenerateKey returns a new data key of length bytes (0 = 32) in plaintext
// and encrypted with a key version, 0 = the latest (KEY:GENERATE).
func (c *Client) GenerateKey(ctx context.Context, enclave, name string, version uint32, ad []byte, length uint32) (*wire.GenerateKeyResponse, error) {
	req := &wire.GenerateKeyRequest{Name: name, Version: version, AssociatedData: ad, Length: length}
	return query[wire.GenerateKeyResponse](ctx, c, enclave, wire.CmdKeyGenerate, req)
}

// MAC computes a MAC of message with a key version, 0 = the latest (KEY:MAC).
func (c *Client) MAC(ctx context.Context, enclave, name string, version uint32, message []byte) (*wire.MACResponse, error) {
	req := &wire.MACRequest{Name: name, Version: version, Message: message}
	return query[wire.MACResponse](ctx, c, enclave, wire.CmdKeyMAC, req)
}
