package commands

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/ledger/ledgertest"
	"github.com/kmsledger/kmsledger/projections"
)

// TestRootKeyNeedsSecretAccess initialises a ledger that keeps its root
// API key sealed and reads it back: with hsm.InsecureSecretAccess() the
// key comes back, with a zero hsm.SecretAccess nothing does, and the
// refusal is not taken for a tampered blob.
func TestRootKeyNeedsSecretAccess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := ledgertest.Open(t)
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
	const rootKey = "k1:2COl4dS3G-cjHa3Q-9fUmOrq8yL0Q7a12HH_Yi0oiLw"
	rek, u, err := Unseal(ctx, store, proj, []NamedHSM{{Name: "soft", Kind: ledger.HSMKindSoft, W: k}},
		InitParams{RootIdentity: "h1:root", RootKey: rootKey, DefaultType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := RootKey(rek, u.Init, hsm.SecretAccess{}); err == nil || errors.Is(err, hsm.ErrUnseal) || got != "" {
		t.Errorf("RootKey(zero SecretAccess) = %q, %v, want \"\" and an error other than ErrUnseal", got, err)
	}
	if got, err := RootKey(rek, u.Init, hsm.InsecureSecretAccess()); err != nil || got != rootKey {
		t.Errorf("RootKey(InsecureSecretAccess()) = %q, %v, want the sealed root key", got, err)
	}
}
