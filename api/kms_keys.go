package api

import (
	"context"
	"fmt"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/projections"
)

// key returns an unsealed key version. A "not found" is answered only
// after the projection has caught up with the ledger head, so a key
// created through another connection a moment ago is found.
func (s *Server) key(ctx context.Context, enclave, name string, version uint32) (*hsm.Key, *projections.Version, error) {
	return s.lookupKey(ctx, s.proj.Key, enclave, name, version)
}

// usableKey is key for crypto: disabled keys and keys pending deletion
// are refused, and the use is recorded.
func (s *Server) usableKey(ctx context.Context, enclave, name string, version uint32) (*hsm.Key, *projections.Version, error) {
	return s.lookupKey(ctx, s.proj.UsableKey, enclave, name, version)
}

type keyLookup func(ctx context.Context, enclave, name string, version uint32) (*hsm.Key, *projections.Version, error)

func (s *Server) lookupKey(ctx context.Context, lookup keyLookup, enclave, name string, version uint32) (*hsm.Key, *projections.Version, error) {
	k, v, err := lookup(ctx, enclave, name, version)
	if isNotFound(err) {
		if cerr := s.proj.CatchUp(ctx); cerr != nil {
			return nil, nil, cerr
		}
		k, v, err = lookup(ctx, enclave, name, version)
	}
	return k, v, err
}

func (s *Server) keyStatus(ctx context.Context, enclave string, m *wire.KeyStatusRequest) (message, error) {
	_, v, err := s.key(ctx, enclave, m.Name, m.Version)
	if err != nil {
		return nil, err
	}
	return &wire.KeyStatusResponse{Name: m.Name, Version: v.Version, Type: v.Type, CreatedAt: v.CreatedAt, CreatedBy: v.CreatedBy}, nil
}

func (s *Server) encrypt(ctx context.Context, enclave string, m *wire.EncryptRequest) (message, error) {
	k, _, err := s.usableKey(ctx, enclave, m.Name, m.Version)
	if err != nil {
		return nil, err
	}
	ct, err := k.Encrypt(m.Plaintext, m.AssociatedData)
	if err != nil {
		return nil, err
	}
	return &wire.EncryptResponse{Version: k.Version(), Ciphertext: ct}, nil
}

func (s *Server) generateKey(ctx context.Context, enclave string, m *wire.GenerateKeyRequest) (message, error) {
	n := int(m.Length)
	if n == 0 {
		n = 32
	}
	if n > MaxDataKey {
		return nil, badRequest("invalid length %d: at most %d bytes", n, MaxDataKey)
	}
	k, _, err := s.usableKey(ctx, enclave, m.Name, m.Version)
	if err != nil {
		return nil, err
	}
	pt, ct, err := k.GenerateDataKey(n, m.AssociatedData)
	if err != nil {
		return nil, err
	}
	return &wire.GenerateKeyResponse{Version: k.Version(), Plaintext: pt, Ciphertext: ct}, nil
}

// decrypt takes the key version from the ciphertext (MinIO always sends
// version 0). A ciphertext that does not carry our header (a format of an
// imported key's earlier life) is tried with the requested version, or
// with every version, newest first.
func (s *Server) decrypt(ctx context.Context, enclave string, m *wire.DecryptRequest) (message, error) {
	if v, ok := hsm.CiphertextVersion(m.Ciphertext); ok {
		if m.Version != 0 && m.Version != v {
			return nil, fmt.Errorf("api: ciphertext of version %d, request names version %d: %w", v, m.Version, hsm.ErrDecrypt)
		}
		k, _, err := s.usableKey(ctx, enclave, m.Name, v)
		if isNotFound(err) {
			// The version is gone (destroyed): the ciphertext can never
			// decrypt again. Say so only if the key itself is gone.
			if _, _, kerr := s.key(ctx, enclave, m.Name, 0); kerr == nil {
				return nil, fmt.Errorf("api: version %d destroyed: %w", v, hsm.ErrDecrypt)
			}
		}
		if err != nil {
			return nil, err
		}
		pt, err := k.Decrypt(m.Ciphertext, m.AssociatedData)
		if err != nil {
			return nil, err
		}
		return &wire.DecryptResponse{Plaintext: pt}, nil
	}
	versions := []uint32{m.Version}
	if m.Version == 0 {
		versions = nil
		var err error
		s.proj.View(func(st *projections.State) {
			e := st.Enclaves[enclave]
			if e == nil {
				err = projections.ErrEnclaveNotFound
				return
			}
			k := e.Keys[m.Name]
			if k == nil {
				err = projections.ErrKeyNotFound
				return
			}
			vs := k.SortedVersions()
			for i := len(vs) - 1; i >= 0; i-- {
				versions = append(versions, vs[i].Version)
			}
		})
		if err != nil {
			// Retry after catching up, as key() does.
			if _, _, err = s.key(ctx, enclave, m.Name, 0); err != nil {
				return nil, err
			}
			return s.decrypt(ctx, enclave, m)
		}
	}
	for _, v := range versions {
		k, _, err := s.usableKey(ctx, enclave, m.Name, v)
		if err != nil {
			return nil, err
		}
		if pt, err := k.Decrypt(m.Ciphertext, m.AssociatedData); err == nil {
			return &wire.DecryptResponse{Plaintext: pt}, nil
		}
	}
	return nil, hsm.ErrDecrypt
}

func (s *Server) mac(ctx context.Context, enclave string, m *wire.MACRequest) (message, error) {
	k, _, err := s.usableKey(ctx, enclave, m.Name, m.Version)
	if err != nil {
		return nil, err
	}
	return &wire.MACResponse{Version: k.Version(), MAC: k.MAC(m.Message)}, nil
}
