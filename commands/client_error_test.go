package commands

import (
	"errors"
	"testing"

	"github.com/kmsledger/kmsledger/api/wire"
)

// TestRefusalsCarryClientText: a refusal keeps its package prefix in
// Error (for logs), gives the same text without it as ClientMessage, and
// still matches its sentinel and, for a policy rule, the wire cause.
func TestRefusalsCarryClientText(t *testing.T) {
	enc := CreateEnclave{Name: "e1"}
	for _, c := range []struct {
		name   string
		when   Command
		is     []error
		client string
	}{
		{"BadName", CreateKey{Enclave: "e1", Name: "a.b"}, []error{ErrInvalidName}, `invalid name: "a.b"`},
		{"BadType", CreateKey{Enclave: "e1", Name: "k", Type: "DES"}, []error{ErrInvalidArgument}, `invalid argument: key type "DES": want AES256 or ChaCha20`},
		{"UnknownRuleCommand", CreatePolicy{Enclave: "e1", Name: "p", Allow: map[string][]string{"KEY:STEAL": {"*"}}},
			[]error{ErrInvalidArgument, wire.ErrUnknownCommand}, `invalid argument: allow rules: unknown command: "KEY:STEAL"`},
		{"BadRulePattern", CreatePolicy{Enclave: "e1", Name: "p", Deny: map[string][]string{"KEY:DECRYPT": {"a*b"}}},
			[]error{ErrInvalidArgument, wire.ErrInvalidPattern}, `invalid argument: deny rules: invalid policy pattern: KEY:DECRYPT: "a*b": want a name, prefix* or *`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decide(given(t, enc), c.when, env(root))
			for _, want := range c.is {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want it to match %v", err, want)
				}
			}
			var cm interface{ ClientMessage() string }
			if !errors.As(err, &cm) {
				t.Fatalf("err = %v has no client message", err)
			}
			if got := cm.ClientMessage(); got != c.client {
				t.Errorf("ClientMessage = %q, want %q", got, c.client)
			}
			if got := err.Error(); got != "commands: "+c.client {
				t.Errorf("Error = %q, want %q", got, "commands: "+c.client)
			}
		})
	}
}
