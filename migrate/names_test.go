package migrate_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/migrate"
)

func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

func TestCommandID(t *testing.T) {
	t.Parallel()
	m := material0to31()
	id := migrate.CommandID("e1", migrate.KindFS, "/keys", "k", m)
	if len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Fatalf("CommandID = %q, want 64 lowercase hex characters", id)
	}
	if again := migrate.CommandID("e1", migrate.KindFS, "/keys", "k", m); again != id {
		t.Errorf("CommandID not deterministic: %s, %s", id, again)
	}
	others := map[string]string{
		"enclave":  migrate.CommandID("e2", migrate.KindFS, "/keys", "k", m),
		"kind":     migrate.CommandID("e1", migrate.KindVault, "/keys", "k", m),
		"location": migrate.CommandID("e1", migrate.KindFS, "/keys2", "k", m),
		"name":     migrate.CommandID("e1", migrate.KindFS, "/keys", "k2", m),
		"material": migrate.CommandID("e1", migrate.KindFS, "/keys", "k", material31to0()),
		"boundary": migrate.CommandID("e1", migrate.KindFS, "/key", "sk", m), // Same concatenation, other split.
	}
	for what, other := range others {
		if other == id {
			t.Errorf("CommandID with another %s = the same id", what)
		}
	}
	if strings.Contains(id, hex.EncodeToString(m)[:16]) {
		t.Errorf("CommandID contains the material")
	}
}
