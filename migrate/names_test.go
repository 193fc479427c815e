package migrate_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/migrate"
)

func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

func TestMapName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 79) + ".b"
	tests := []struct{ in, want string }{
		{"minio-default-key", "minio-default-key"},
		{"A_b-9", "A_b-9"},
		{strings.Repeat("x", 80), strings.Repeat("x", 80)},
		{"my.key", "my_key-" + hash8("my.key")},
		{"my:key", "my_key-" + hash8("my:key")},
		{"_", "_-" + hash8("_")},
		{"ключ", "________-" + hash8("ключ")},
		{"a b/c", "a_b_c-" + hash8("a b/c")},
		{strings.Repeat("y", 81), strings.Repeat("y", 71) + "-" + hash8(strings.Repeat("y", 81))},
		{long, strings.Repeat("a", 71) + "-" + hash8(long)},
	}
	for _, tt := range tests {
		got, err := migrate.MapName(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("MapName(%q) = %q, %v, want %q, nil", tt.in, got, err, tt.want)
		}
		if !ledger.ValidName(got) {
			t.Errorf("MapName(%q) = %q, not a valid ledger name", tt.in, got)
		}
	}
	if _, err := migrate.MapName(""); !errors.Is(err, migrate.ErrName) {
		t.Errorf("MapName(\"\") err = %v, want ErrName", err)
	}
}

func FuzzMapName(f *testing.F) {
	for _, s := range []string{"k", "my.key", "_", strings.Repeat("z", 100), "\xff\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := migrate.MapName(s)
		if s == "" {
			if !errors.Is(err, migrate.ErrName) {
				t.Fatalf("MapName(\"\") err = %v, want ErrName", err)
			}
			return
		}
		if err != nil || !ledger.ValidName(got) {
			t.Fatalf("MapName(%q) = %q, %v: not a valid name", s, got, err)
		}
		if ledger.ValidName(s) != (got == s) {
			t.Fatalf("MapName(%q) = %q: valid names must be kept, others changed", s, got)
		}
		if again, _ := migrate.MapName(s); again != got {
			t.Fatalf("MapName(%q) not deterministic: %q then %q", s, got, again)
		}
	})
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
