package keys

import (
	"context"
	"fmt"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/projections"
)

// DefaultDataKey is the length of a data key when none is asked for.
const DefaultDataKey = 32

// DataKey is a generated data key: the plaintext, its ciphertext and the
// key version that encrypted it.
type DataKey struct {
	Version    uint32
	Plaintext  []byte
	Ciphertext []byte
}

// GenerateDataKey returns length random bytes (0 = DefaultDataKey) and
// their ciphertext under the key version (0 = latest), bound to ad.
func (s *Service) GenerateDataKey(ctx context.Context, enclave, name string, version uint32, ad []byte, length int) (DataKey, error) {
	if length == 0 {
		length = DefaultDataKey
	}
	k, _, err := s.UsableKey(ctx, enclave, name, version)
	if err != nil {
		return DataKey{}, err
	}
	pt, ct, err := k.GenerateDataKey(length, ad)
	if err != nil {
		return DataKey{}, err
	}
	return DataKey{Version: k.Version(), Plaintext: pt, Ciphertext: ct}, nil
}

// Encrypt encrypts plaintext under the key version (0 = latest), bound to
// ad, and says which version it used.
func (s *Service) Encrypt(ctx context.Context, enclave, name string, version uint32, plaintext, ad []byte) (used uint32, ciphertext []byte, err error) {
	k, _, err := s.UsableKey(ctx, enclave, name, version)
	if err != nil {
		return 0, nil, err
	}
	ct, err := k.Encrypt(plaintext, ad)
	if err != nil {
		return 0, nil, err
	}
	return k.Version(), ct, nil
}

// Decrypt takes the key version from the ciphertext (MinIO always sends
// version 0); a version asked for must then match it. A ciphertext that
// does not carry our header (a format of an imported key's earlier life)
// is tried with the version asked for, or with every version, newest
// first. A ciphertext of a destroyed version of a key that still exists
// fails with hsm.ErrDecrypt.
func (s *Service) Decrypt(ctx context.Context, enclave, name string, version uint32, ciphertext, ad []byte) ([]byte, error) {
	if v, ok := hsm.CiphertextVersion(ciphertext); ok {
		if version != 0 && version != v {
			return nil, fmt.Errorf("keys: ciphertext of version %d, request names version %d: %w", v, version, hsm.ErrDecrypt)
		}
		k, _, err := s.UsableKey(ctx, enclave, name, v)
		if IsNotFound(err) {
			// The version is gone (destroyed): the ciphertext can never
			// decrypt again. Say so only if the key itself is gone.
			if _, _, kerr := s.Key(ctx, enclave, name, 0); kerr == nil {
				return nil, fmt.Errorf("keys: version %d destroyed: %w", v, hsm.ErrDecrypt)
			}
		}
		if err != nil {
			return nil, err
		}
		return k.Decrypt(ciphertext, ad)
	}
	versions := []uint32{version}
	if version == 0 {
		var err error
		if versions, err = s.newestFirst(enclave, name); err != nil {
			// Retry after catching up, as Key does.
			if _, _, err = s.Key(ctx, enclave, name, 0); err != nil {
				return nil, err
			}
			return s.Decrypt(ctx, enclave, name, version, ciphertext, ad)
		}
	}
	for _, v := range versions {
		k, _, err := s.UsableKey(ctx, enclave, name, v)
		if err != nil {
			return nil, err
		}
		if pt, err := k.Decrypt(ciphertext, ad); err == nil {
			return pt, nil
		}
	}
	return nil, hsm.ErrDecrypt
}

// newestFirst lists the live versions of a key, newest first, from the
// projection as it is.
func (s *Service) newestFirst(enclave, name string) (versions []uint32, err error) {
	s.proj.View(func(st *projections.State) {
		e := st.Enclaves[enclave]
		if e == nil {
			err = projections.ErrEnclaveNotFound
			return
		}
		k := e.Keys[name]
		if k == nil {
			err = projections.ErrKeyNotFound
			return
		}
		vs := k.SortedVersions()
		for i := len(vs) - 1; i >= 0; i-- {
			versions = append(versions, vs[i].Version)
		}
	})
	return versions, err
}

// MAC returns the HMAC-SHA256 of message under the key version's HMAC key
// (0 = latest) and the version used.
func (s *Service) MAC(ctx context.Context, enclave, name string, version uint32, message []byte) (used uint32, mac []byte, err error) {
	k, _, err := s.UsableKey(ctx, enclave, name, version)
	if err != nil {
		return 0, nil, err
	}
	return k.Version(), k.MAC(message), nil
}

// Rewrap decrypts a ciphertext (as Decrypt with version 0) and encrypts
// the plaintext under the latest version of the same key; the plaintext
// never leaves the service.
func (s *Service) Rewrap(ctx context.Context, enclave, name string, ciphertext, ad []byte) (used uint32, out []byte, err error) {
	pt, err := s.Decrypt(ctx, enclave, name, 0, ciphertext, ad)
	if err != nil {
		return 0, nil, err
	}
	defer clear(pt)
	k, _, err := s.UsableKey(ctx, enclave, name, 0)
	if err != nil {
		return 0, nil, err
	}
	ct, err := k.Encrypt(pt, ad)
	if err != nil {
		return 0, nil, err
	}
	return k.Version(), ct, nil
}
