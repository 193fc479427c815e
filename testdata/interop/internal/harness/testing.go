package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"
)

// CallTimeout bounds the context Context returns.
const CallTimeout = 60 * time.Second

// Context returns a context that ends with the test, or after CallTimeout.
func Context(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), CallTimeout)
	t.Cleanup(cancel)
	return c
}

// UniqueName returns prefix, a dash and a random hex suffix; it is URL-safe.
func UniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}
