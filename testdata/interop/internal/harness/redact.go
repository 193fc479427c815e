package harness

import (
	"regexp"
	"strings"
	"sync"
)

// Redacted replaces every secret a Redactor removes.
const Redacted = "<redacted>"

// secretPattern matches kmsledger/kms-go API keys (k1:, k2:), KES API keys
// (kes:v1:) and software HSM keys (hsm:<kind>:...).
var secretPattern = regexp.MustCompile(`\bk[12]:[A-Za-z0-9_+/=-]+|\bkes:v1:[A-Za-z0-9_+/=-]+|\bhsm:[a-z0-9]+:[A-Za-z0-9_+/=-]+`)

// Redactor removes secrets from text: API keys and HSM keys by pattern, and
// literal secrets (passwords, static keys) registered with Add. The zero
// value is ready to use; it is safe for concurrent use.
type Redactor struct {
	mu       sync.Mutex
	literals []string
}

// Add registers literal secrets; empty strings are ignored.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if s != "" {
			r.literals = append(r.literals, s)
		}
	}
}

// Redact returns s without secrets.
func (r *Redactor) Redact(s string) string {
	s = secretPattern.ReplaceAllString(s, Redacted)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, lit := range r.literals {
		s = strings.ReplaceAll(s, lit, Redacted)
	}
	return s
}
