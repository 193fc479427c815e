package commands

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/ledger/ledgertest"
	"github.com/kmsledger/kmsledger/projections"
)

// signingLedger is an initialised ledger with its projection and REK.
func signingLedger(t *testing.T) (*ledger.Store, *projections.Projection, *hsm.REK) {
	t.Helper()
	return signingLedgerConfig(t, ledger.Config{})
}

// signingLedgerConfig is signingLedger on a Store opened with cfg.
func signingLedgerConfig(t *testing.T, cfg ledger.Config) (*ledger.Store, *projections.Projection, *hsm.REK) {
	t.Helper()
	ctx := context.Background()
	store := ledgertest.OpenConfig(t, cfg)
	proj, err := projections.Open(ctx, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proj.Close)
	s, err := softkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := softkey.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	rek, _, err := Unseal(ctx, store, proj, []NamedHSM{{Name: "soft", Kind: "soft", W: k}},
		InitParams{RootIdentity: "h1:root", DefaultType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	return store, proj, rek
}

func TestSigningKeyCreatedOnceAndTrusted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, proj, rek := signingLedger(t)
	k1, err := SigningKey(ctx, store, proj, rek, "h1:root")
	if err != nil {
		t.Fatalf("SigningKey err = %v", err)
	}
	k2, err := SigningKey(ctx, store, proj, rek, "h1:root")
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second SigningKey = (%x..., %v), want the same key", k2[:4], err)
	}
	if keys, err := store.SigningKeys(ctx); err != nil || len(keys) != 1 {
		t.Fatalf("recorded signing keys = %d, %v; want exactly 1", len(keys), err)
	}
	trusted, bad, err := TrustedSigningKeys(ctx, store, rek)
	pub := k1.Public().(ed25519.PublicKey)
	if err != nil || len(bad) != 0 || !pub.Equal(trusted[ledger.KeyID(pub)]) || len(trusted) != 1 {
		t.Fatalf("TrustedSigningKeys = (%v, %v, %v), want only %s", trusted, bad, err, ledger.KeyID(pub))
	}
	// The key signs checkpoints that verify with the trusted keys.
	if _, err := store.Checkpoint(ctx, k1); err != nil {
		t.Fatal(err)
	}
}

// TestForgedSigningKeysAreNotTrusted records keys as someone who can
// append to the ledger but cannot use the HSM would: sealed under another
// REK, or a real sealed seed presented with another public key. Neither
// is trusted, and a checkpoint signed by the forger fails verification.
func TestForgedSigningKeysAreNotTrusted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, proj, rek := signingLedger(t)
	real, err := SigningKey(ctx, store, proj, rek, "h1:root")
	if err != nil {
		t.Fatal(err)
	}
	_, _, otherREK := signingLedger(t)
	forger := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	fpub := forger.Public().(ed25519.PublicKey)
	sealedElsewhere, err := otherREK.Seal(forger.Seed(), []byte(signingKeyAAD))
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := store.SigningKeys(ctx)
	forged := []ledger.SigningKey{
		{KeyID: ledger.KeyID(fpub), Algorithm: ledger.SigningAlgorithm, PublicKey: fpub, SealedPrivateKey: sealedElsewhere},
		{KeyID: ledger.KeyID(fpub), Algorithm: ledger.SigningAlgorithm, PublicKey: fpub, SealedPrivateKey: keys[0].SealedPrivateKey},
	}
	for i, k := range forged {
		if err := appendSystem(ctx, store, proj, time.Now(), "h1:forger", "", ledger.TypeSigningKey, k); err != nil {
			t.Fatalf("append forged key %d: %v", i, err)
		}
	}
	trusted, bad, err := TrustedSigningKeys(ctx, store, rek)
	if err != nil || len(trusted) != 1 || len(bad) != 2 {
		t.Fatalf("TrustedSigningKeys = (%d trusted, %v, %v), want 1 trusted and 2 refused", len(trusted), bad, err)
	}
	for _, e := range bad {
		if !errors.Is(e, ErrSigningKey) {
			t.Errorf("refused key err = %v, want ErrSigningKey", e)
		}
	}
	if _, ok := trusted[ledger.KeyID(real.Public().(ed25519.PublicKey))]; !ok {
		t.Fatal("the real signing key is not trusted")
	}
	// SigningKey keeps the first record: forged later ones change nothing.
	if got, err := SigningKey(ctx, store, proj, rek, "h1:root"); err != nil || !got.Equal(real) {
		t.Fatalf("SigningKey with forged later records = (%v, %v), want the real key", got != nil, err)
	}
	seq, err := store.Checkpoint(ctx, forger)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Verify(ctx, ledger.VerifyOptions{Keys: trusted})
	var te *ledger.TamperError
	if !errors.As(err, &te) || te.Seq != seq {
		t.Fatalf("Verify err = %v, want the forger's checkpoint at seq %d reported", err, seq)
	}
}
