package api_test

import (
	"testing"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/api/wire"
)

// TestLedgerVerifyOnline: the root identity has a running node verify
// its ledger (chains and checkpoints); an enclave Admin, a random
// certificate and no certificate are refused.
func TestLedgerVerifyOnline(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{Checkpoints: true, CheckpointEvents: 2})
	ctx := t.Context()
	root := n.Client(t, n.RootKey)
	if err := root.CreateEnclave(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if err := root.CreateKey(ctx, "e", k, "", false); err != nil {
			t.Fatal(err)
		}
	}
	v, err := root.VerifyLedger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK || v.Report == nil || v.Report.Ledger.Last < 4 {
		t.Fatalf("VerifyLedger = %+v, want ok over the whole ledger", v)
	}
	if v.Report.Checkpoints == 0 || v.Report.Ledger.SignedThrough == 0 {
		t.Errorf("no checkpoint verified: %+v", v.Report)
	}

	adminKey, adminID := nodetest.NewIdentity(t)
	if err := root.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: adminID, Privilege: "Admin"}); err != nil {
		t.Fatal(err)
	}
	strangerKey, _ := nodetest.NewIdentity(t)
	for name, c := range map[string]*client.Client{"admin": n.Client(t, adminKey), "stranger": n.Client(t, strangerKey)} {
		if _, err := c.VerifyLedger(ctx); err == nil {
			t.Errorf("%s: VerifyLedger err = nil, want access denied", name)
		}
	}
}
