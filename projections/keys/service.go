package keys

import (
	"context"
	"errors"

	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/projections"
)

// Service answers reads and crypto requests from a Projection.
type Service struct {
	proj *projections.Projection
}

// New returns the Service over proj.
func New(proj *projections.Projection) *Service { return &Service{proj: proj} }

// IsNotFound reports whether err says that an enclave, key, policy or
// identity does not exist.
func IsNotFound(err error) bool {
	return errors.Is(err, projections.ErrKeyNotFound) || errors.Is(err, projections.ErrEnclaveNotFound) ||
		errors.Is(err, commands.ErrPolicyNotFound) || errors.Is(err, commands.ErrIdentityNotFound)
}

// Key returns an unsealed key version (0 = latest) and its metadata,
// whatever the key's state. A "not found" is answered only after the
// projection has caught up with the ledger head.
func (s *Service) Key(ctx context.Context, enclave, name string, version uint32) (*hsm.Key, *projections.Version, error) {
	return s.lookup(ctx, s.proj.Key, enclave, name, version)
}

// UsableKey is Key for crypto: disabled keys and keys pending deletion
// are refused, and the use is recorded.
func (s *Service) UsableKey(ctx context.Context, enclave, name string, version uint32) (*hsm.Key, *projections.Version, error) {
	return s.lookup(ctx, s.proj.UsableKey, enclave, name, version)
}

type keyLookup func(ctx context.Context, enclave, name string, version uint32) (*hsm.Key, *projections.Version, error)

func (s *Service) lookup(ctx context.Context, lookup keyLookup, enclave, name string, version uint32) (*hsm.Key, *projections.Version, error) {
	k, v, err := lookup(ctx, enclave, name, version)
	if IsNotFound(err) {
		if cerr := s.proj.CatchUp(ctx); cerr != nil {
			return nil, nil, cerr
		}
		k, v, err = lookup(ctx, enclave, name, version)
	}
	return k, v, err
}

// Read runs fn under the projection's read lock; when fn answers "not
// found" it catches up with the ledger head and runs fn again. fn must
// not keep references to the state, nor change it.
func (s *Service) Read(ctx context.Context, fn func(*projections.State) error) error {
	var err error
	s.proj.View(func(st *projections.State) { err = fn(st) })
	if IsNotFound(err) {
		if cerr := s.proj.CatchUp(ctx); cerr != nil {
			return cerr
		}
		s.proj.View(func(st *projections.State) { err = fn(st) })
	}
	return err
}

// ReadEnclave is Read on one enclave: projections.ErrEnclaveNotFound if it
// does not exist (after catching up).
func (s *Service) ReadEnclave(ctx context.Context, enclave string, fn func(*projections.Enclave) error) error {
	return s.Read(ctx, func(st *projections.State) error {
		e, err := enclaveOf(st, enclave)
		if err != nil {
			return err
		}
		return fn(e)
	})
}

// ReadKey is Read on one key: projections.ErrEnclaveNotFound or
// projections.ErrKeyNotFound if it does not exist (after catching up).
func (s *Service) ReadKey(ctx context.Context, enclave, name string, fn func(*projections.Key) error) error {
	return s.ReadEnclave(ctx, enclave, func(e *projections.Enclave) error {
		k := e.Keys[name]
		if k == nil {
			return projections.ErrKeyNotFound
		}
		return fn(k)
	})
}

func enclaveOf(st *projections.State, name string) (*projections.Enclave, error) {
	if e := st.Enclaves[name]; e != nil {
		return e, nil
	}
	return nil, projections.ErrEnclaveNotFound
}
