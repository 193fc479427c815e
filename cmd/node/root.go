package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/kmsledger/kmsledger/api/metrics"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// RootAPIKeyLabel derives the root API key from a software HSM key, so a
// lost printout is recoverable from the HSM key (kmsledger identity
// --hsm-key): seed = HKDF-SHA256(hsm key, info = this label).
const RootAPIKeyLabel = "kmsledger/root-api-key/v1"

// DeriveRootAPIKey derives the root API key and identity from a software
// HSM key.
func DeriveRootAPIKey(hk *softkey.Key) (key, identity string, err error) {
	seed := hk.DeriveSeed(RootAPIKeyLabel)
	defer clear(seed)
	key = "k1:" + base64.RawURLEncoding.EncodeToString(seed)
	identity, err = identityOf(key)
	if err != nil {
		return "", "", err
	}
	return key, identity, nil
}

// identityOf returns the h1: identity of an API key.
func identityOf(apiKey string) (string, error) {
	signer, err := wire.ParseAPIKey(apiKey)
	if err != nil {
		return "", err
	}
	return wire.Identity(signer.Public())
}

// newRootKey returns the root API key a new ledger gets with these HSMs:
// derived from the first one when it is a software HSM key (recomputable
// with `identity`), otherwise random and kept sealed under the REK
// (`identity --config`); sealed tells which.
func newRootKey(hsms []commands.NamedHSM) (key, id string, sealed bool, err error) {
	w := hsms[0].W
	if c, ok := w.(*metrics.CountedHSM); ok {
		w = c.Unwrapped()
	}
	if k, ok := w.(*softkey.Key); ok {
		key, id, err = DeriveRootAPIKey(k)
		return key, id, false, err
	}
	if key, err = wire.GenerateAPIKey(rand.Reader); err != nil {
		return "", "", false, err
	}
	id, err = identityOf(key)
	return key, id, true, err
}

// RootOf returns the root API key and identity a node with these HSMs
// and data dir uses. A first software HSM key derives them; that is the
// root of a new ledger. An initialised ledger says which root it has (it
// may have been initialised by another HSM, whose random root key is
// sealed in it), so the (stopped) node's ledger is read, read-only,
// whenever it exists; while a server holds it, a derived root is
// returned unchecked and any other is refused.
func RootOf(ctx context.Context, cfgs []config.HSM, dir string) (key, id string, err error) {
	if len(cfgs) == 0 {
		return "", "", errors.New("the configuration has no HSM")
	}
	var derivedKey, derivedID string
	if s := cfgs[0].Soft; s != nil {
		k, err := softkey.Parse(s.Key)
		if err != nil {
			return "", "", err
		}
		if derivedKey, derivedID, err = DeriveRootAPIKey(k); err != nil {
			return "", "", err
		}
		if _, err := os.Stat(filepath.Join(dir, "jetstream")); dir == "" || err != nil {
			return derivedKey, derivedID, nil // no ledger yet
		}
	}
	if dir == "" {
		return "", "", errors.New("no data dir: give DIR or dir: in the config")
	}
	return rootOfLedger(ctx, cfgs, dir, derivedKey, derivedID)
}

// rootOfLedger is RootOf for an existing data dir.
func rootOfLedger(ctx context.Context, cfgs []config.HSM, dir, derivedKey, derivedID string) (key, id string, err error) {
	log := slog.New(slog.DiscardHandler)
	hsms, errs := OpenHSMs(ctx, cfgs, log)
	defer hsms.Close()
	if len(hsms.List) == 0 {
		return "", "", errors.Join(errs...)
	}
	store, err := ledger.Open(ctx, ledger.Config{Dir: dir, Logger: log, ReadOnly: true})
	if errors.Is(err, ledger.ErrLocked) && derivedKey != "" {
		return derivedKey, derivedID, nil
	}
	if err != nil {
		return "", "", fmt.Errorf("open %s (is the server running? stop it first): %w", dir, err)
	}
	defer store.Close()
	proj, err := projections.Open(ctx, store, nil, log)
	if err != nil {
		return "", "", err
	}
	defer proj.Close()
	switch initialized := isInitialized(proj); {
	case !initialized && derivedKey != "":
		return derivedKey, derivedID, nil
	case !initialized:
		return "", "", fmt.Errorf("%s holds no initialised ledger", dir)
	}
	rek, u, err := commands.Unseal(ctx, store, proj, hsms.List, commands.InitParams{})
	if err != nil {
		return "", "", err
	}
	if key, err = commands.RootKey(rek, u.Init, hsm.InsecureSecretAccess()); err != nil || key != "" {
		return key, u.Init.RootIdentity, err
	}
	if derivedID == u.Init.RootIdentity {
		return derivedKey, derivedID, nil
	}
	return "", "", errors.New("the root API key of this ledger is derived from a software HSM key that is not the first HSM of this configuration")
}

func isInitialized(proj *projections.Projection) bool {
	var initialized bool
	proj.View(func(s *projections.State) { initialized = s.Initialized })
	return initialized
}
