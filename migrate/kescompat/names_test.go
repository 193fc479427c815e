package kescompat_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/migrate/kescompat"
)

func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

func TestKeyName(t *testing.T) {
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
		got, err := kescompat.KeyName(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("KeyName(%q) = %q, %v, want %q, nil", tt.in, got, err, tt.want)
		}
		if !ledger.ValidName(got) {
			t.Errorf("KeyName(%q) = %q, not a valid ledger name", tt.in, got)
		}
	}
	if _, err := kescompat.KeyName(""); !errors.Is(err, kescompat.ErrName) {
		t.Errorf("KeyName(\"\") err = %v, want ErrName", err)
	}
}

func FuzzKeyName(f *testing.F) {
	for _, s := range []string{"k", "my.key", "_", strings.Repeat("z", 100), "\xff\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := kescompat.KeyName(s)
		if s == "" {
			if !errors.Is(err, kescompat.ErrName) {
				t.Fatalf("KeyName(\"\") err = %v, want ErrName", err)
			}
			return
		}
		if err != nil || !ledger.ValidName(got) {
			t.Fatalf("KeyName(%q) = %q, %v: not a valid name", s, got, err)
		}
		if ledger.ValidName(s) != (got == s) {
			t.Fatalf("KeyName(%q) = %q: valid names must be kept, others changed", s, got)
		}
		if again, _ := kescompat.KeyName(s); again != got {
			t.Fatalf("KeyName(%q) not deterministic: %q then %q", s, got, again)
		}
	})
}
