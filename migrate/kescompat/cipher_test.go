package kescompat_test

import (
	"testing"

	"github.com/kmsledger/kmsledger/migrate/kescompat"
)

func TestKeyType(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "AES256"},
		{"AES256", "AES256"},
		{"AES256-GCM_SHA256", "AES256"},
		{"ChaCha20", "ChaCha20"},
		{"XCHACHA20-POLY1305", "ChaCha20"},
	}
	for _, tt := range tests {
		if got, ok := kescompat.KeyType(tt.in); !ok || got != tt.want {
			t.Errorf("KeyType(%q) = %q, %v, want %q, true", tt.in, got, ok, tt.want)
		}
	}
	// Names are exact: no case folding, no other ciphers.
	for _, bad := range []string{"aes256", "chacha20", "AES128", "AES256-GCM", "XChaCha20-Poly1305", " AES256"} {
		if got, ok := kescompat.KeyType(bad); ok {
			t.Errorf("KeyType(%q) = %q, true, want false", bad, got)
		}
	}
}
