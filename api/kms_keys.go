package api

import (
	"context"

	"github.com/kmsledger/kmsledger/api/wire"
)

// The KEY:* reads of the kms API: each translates its wire message to a
// call of the read-and-crypto service (projections/keys) and its answer
// back. The answers carry the key version used (for auditReply).

func (s *Server) keyStatus(ctx context.Context, enclave string, m *wire.KeyStatusRequest) (message, error) {
	k, err := s.keys.KeyStatus(ctx, enclave, m.Name, m.Version)
	if err != nil {
		return nil, err
	}
	return &wire.KeyStatusResponse{Name: k.Name, Version: k.Version, Type: k.Type, CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy}, nil
}

func (s *Server) encrypt(ctx context.Context, enclave string, m *wire.EncryptRequest) (message, error) {
	v, ct, err := s.keys.Encrypt(ctx, enclave, m.Name, m.Version, m.Plaintext, m.AssociatedData)
	if err != nil {
		return nil, err
	}
	return &wire.EncryptResponse{Version: v, Ciphertext: ct}, nil
}

// generateKey bounds the length before the service defaults 0 to 32
// bytes, with the kms API's own message.
func (s *Server) generateKey(ctx context.Context, enclave string, m *wire.GenerateKeyRequest) (message, error) {
	if n := int(m.Length); n > MaxDataKey {
		return nil, badRequest("invalid length %d: at most %d bytes", n, MaxDataKey)
	}
	dk, err := s.keys.GenerateDataKey(ctx, enclave, m.Name, m.Version, m.AssociatedData, int(m.Length))
	if err != nil {
		return nil, err
	}
	return &wire.GenerateKeyResponse{Version: dk.Version, Plaintext: dk.Plaintext, Ciphertext: dk.Ciphertext}, nil
}

// decrypt: see keys.Service.Decrypt for the version selection and the
// ciphertexts of an imported key's earlier life.
func (s *Server) decrypt(ctx context.Context, enclave string, m *wire.DecryptRequest) (message, error) {
	pt, err := s.keys.Decrypt(ctx, enclave, m.Name, m.Version, m.Ciphertext, m.AssociatedData)
	if err != nil {
		return nil, err
	}
	return &wire.DecryptResponse{Plaintext: pt}, nil
}

func (s *Server) mac(ctx context.Context, enclave string, m *wire.MACRequest) (message, error) {
	v, mac, err := s.keys.MAC(ctx, enclave, m.Name, m.Version, m.Message)
	if err != nil {
		return nil, err
	}
	return &wire.MACResponse{Version: v, MAC: mac}, nil
}
