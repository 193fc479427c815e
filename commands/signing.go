// Checkpoint signing key: creation, sealing under the REK, and trust.
//
// Summary: the ledger's checkpoints (ledger/checkpoint.go) are signed
// with an Ed25519 key (RFC 8032). SigningKey creates it on the first start
// of a ledger that has none (a new ledger, or one written before
// checkpoints), seals its 32-byte seed with REK.Seal under the associated
// data "kmsledger/signing-key/v1" and records the sealed seed with the
// public key in a system.signing_key.v1 event. Only the REK, which only
// the HSM opens, can unseal it. TrustedSigningKeys is the verifier's side:
// a recorded public key is trusted only if the REK opens its sealed seed
// and the seed gives that very public key, so whoever can write the data
// directory but not use the HSM cannot slip in a key of their own.
//
// The unsealed key stays in memory while the server runs (the
// Checkpointer holds it); Go may leave copies of it on the heap.

package commands

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// signingKeyAAD binds a sealed signing key to its purpose.
const signingKeyAAD = "kmsledger/signing-key/v1"

// ErrSigningKey reports a recorded signing key that the REK does not open,
// or whose sealed seed does not give the recorded public key.
var ErrSigningKey = errors.New("commands: checkpoint signing key does not verify")

// SigningKey returns the ledger's checkpoint signing key, unsealed with
// rek. If the ledger has none it creates one, records it as actor and
// returns it. One is created only when none is recorded, and the first
// recorded is the one used (should two nodes of a new cluster both record
// one, every node uses the first; checkpoints signed by either verify, see
// TrustedSigningKeys). It is read from the start of the ledger
// (Store.FirstSigningKey), so a start does not read the whole ledger to
// find it.
func SigningKey(ctx context.Context, store *ledger.Store, proj *projections.Projection, rek *hsm.REK, actor string) (ed25519.PrivateKey, error) {
	for attempt := 0; attempt < 2; attempt++ {
		k, err := store.FirstSigningKey(ctx)
		if err != nil {
			return nil, err
		}
		if k != nil {
			return openSigningKey(rek, *k)
		}
		if attempt > 0 {
			break
		}
		err = newSigningKey(ctx, store, proj, rek, actor)
		if err != nil && !errors.Is(err, ledger.ErrConflict) {
			return nil, err
		}
		// Recorded now, or another node recorded one first: read it back.
	}
	return nil, fmt.Errorf("%w: none recorded", ErrSigningKey)
}

// newSigningKey creates, seals and records a signing key.
func newSigningKey(ctx context.Context, store *ledger.Store, proj *projections.Projection, rek *hsm.REK, actor string) error {
	seed := make([]byte, ed25519.SeedSize)
	defer clear(seed)
	if _, err := rand.Read(seed); err != nil {
		return fmt.Errorf("commands: signing key: %w", err)
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	sealed, err := rek.Seal(seed, []byte(signingKeyAAD))
	if err != nil {
		return fmt.Errorf("commands: seal signing key: %w", err)
	}
	id := ledger.KeyID(pub)
	k := ledger.SigningKey{KeyID: id, Algorithm: ledger.SigningAlgorithm, PublicKey: pub, SealedPrivateKey: sealed}
	cmdID := "signing-key-" + strings.TrimPrefix(id, "ed25519:")
	// SigningKey runs at start, before a Handler (and its clock) exists.
	if err := appendSystem(ctx, store, proj, time.Now(), actor, cmdID, ledger.TypeSigningKey, k); err != nil {
		return fmt.Errorf("commands: record signing key: %w", err)
	}
	return nil
}

// openSigningKey unseals a recorded key and checks it against its public
// key and id.
func openSigningKey(rek *hsm.REK, k ledger.SigningKey) (ed25519.PrivateKey, error) {
	if k.Algorithm != ledger.SigningAlgorithm {
		return nil, fmt.Errorf("%w: %s: algorithm %q", ErrSigningKey, k.KeyID, k.Algorithm)
	}
	seed, err := rek.Unseal(k.SealedPrivateKey, []byte(signingKeyAAD), hsm.InsecureSecretAccess())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSigningKey, k.KeyID, err)
	}
	defer clear(seed)
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: %s: sealed seed of %d bytes", ErrSigningKey, k.KeyID, len(seed))
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	if !bytes.Equal(pub, k.PublicKey) || ledger.KeyID(pub) != k.KeyID {
		return nil, fmt.Errorf("%w: %s: the sealed seed is not the recorded public key's", ErrSigningKey, k.KeyID)
	}
	return priv, nil
}

// TrustedSigningKeys returns, by key id, the public keys of the ledger's
// signing keys that rek opens and that match their record. A recorded
// key that fails is left out and its error returned in bad: checkpoints
// signed by it will not verify.
func TrustedSigningKeys(ctx context.Context, store *ledger.Store, rek *hsm.REK) (trusted map[string]ed25519.PublicKey, bad []error, err error) {
	keys, err := store.SigningKeys(ctx)
	if err != nil {
		return nil, nil, err
	}
	trusted = map[string]ed25519.PublicKey{}
	for _, k := range keys {
		priv, err := openSigningKey(rek, k)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		trusted[k.KeyID] = priv.Public().(ed25519.PublicKey)
		clear(priv)
	}
	return trusted, bad, nil
}
