package api_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
)

// A deny rule keyed in another case is enforced, never stored so that it
// is ignored; unknown command names and bad patterns are refused with 400
// and create nothing.
func TestPolicyRulesParsedAtEdge(t *testing.T) {
	s := newStack(t)
	root := s.client("")
	mustOK(t, root.CreateEnclave(ctx, "e"))
	mustOK(t, root.CreateKey(ctx, "e", "k", "", false))
	mustOK(t, root.CreateKey(ctx, "e", "other", "", false))
	userKey, userID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: userID}))
	mustOK(t, root.CreatePolicy(ctx, "e", &wire.CreatePolicyRequest{
		Name:  "p",
		Allow: map[string][]string{"key:decrypt": {"*"}, "Key:Generate": {"*"}},
		Deny:  map[string][]string{"key:decrypt": {"k"}},
	}))
	mustOK(t, root.AssignPolicy(ctx, "e", userID, "p"))

	// kms-go's GetPolicy decodes it: canonical names only.
	p, err := root.GetPolicy(ctx, "e", "p")
	mustOK(t, err)
	if want := map[string][]string{"KEY:DECRYPT": {"k"}}; !reflect.DeepEqual(p.Deny, want) {
		t.Fatalf("Deny = %v, want %v", p.Deny, want)
	}
	if want := map[string][]string{"KEY:DECRYPT": {"*"}, "KEY:GENERATE": {"*"}}; !reflect.DeepEqual(p.Allow, want) {
		t.Fatalf("Allow = %v, want %v", p.Allow, want)
	}

	user := s.client(userKey)
	g, err := root.GenerateKey(ctx, "e", "k", 0, nil, 0)
	mustOK(t, err)
	if _, err := user.Decrypt(ctx, "e", "k", 0, g.Ciphertext, nil); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("Decrypt of the denied key err = %v, want 403", err)
	}
	g2, err := user.GenerateKey(ctx, "e", "other", 0, nil, 0)
	mustOK(t, err)
	if _, err := user.Decrypt(ctx, "e", "other", 0, g2.Ciphertext, nil); err != nil {
		t.Fatalf("Decrypt of an allowed key err = %v", err)
	}

	for _, tc := range []struct {
		name        string
		allow, deny map[string][]string
		want        string
	}{
		{"UnknownAllow", map[string][]string{"KEY:DECRYPTT": {"*"}}, nil, `"KEY:DECRYPTT"`},
		{"UnknownDeny", nil, map[string][]string{"KEY:DECRYPTT": {"*"}}, `"KEY:DECRYPTT"`},
		{"GlobPattern", map[string][]string{"KEY:DECRYPT": {"a*b"}}, nil, `"a*b"`},
		{"DottedPattern", nil, map[string][]string{"KEY:DECRYPT": {"a.b"}}, `"a.b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.stateJSON()
			err := root.CreatePolicy(ctx, "e", &wire.CreatePolicyRequest{Name: "bad", Allow: tc.allow, Deny: tc.deny})
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(ce.Message, tc.want) {
				t.Fatalf("CreatePolicy err = %v, want 400 naming %s", err, tc.want)
			}
			if _, err := root.PolicyStatus(ctx, "e", "bad"); !errors.Is(err, client.ErrPolicyNotFound) {
				t.Fatalf("PolicyStatus(bad) err = %v, want not found", err)
			}
			if after := s.stateJSON(); after != before {
				t.Fatal("a refused policy changed the state")
			}
		})
	}
}

// Decide checks rules again, for writers that do not come through the API.
func TestDecideRefusesUnknownPolicyCommand(t *testing.T) {
	s := newStack(t)
	mustOK(t, s.client("").CreateEnclave(ctx, "e"))
	_, err := s.Handler.Execute(ctx, s.RootID, "", commands.CreatePolicy{Enclave: "e", Name: "p",
		Deny: map[string][]string{"KEY:DECRYPTT": {"*"}}})
	if !errors.Is(err, commands.ErrInvalidArgument) || !errors.Is(err, wire.ErrUnknownCommand) {
		t.Fatalf("Execute err = %v, want invalid argument (unknown command)", err)
	}
}

// A policy stored before names were checked still replays; its rules are
// enforced by their canonical names, and unknown names match nothing.
func TestOldPolicyWithBadNamesReplays(t *testing.T) {
	s := newStack(t)
	root := s.client("")
	mustOK(t, root.CreateEnclave(ctx, "e"))
	mustOK(t, root.CreateKey(ctx, "e", "k", "", false))
	userKey, userID := newIdentity(t)
	mustOK(t, root.CreateIdentity(ctx, "e", &wire.CreateIdentityRequest{Identity: userID}))
	payload, _ := json.Marshal(ledger.PolicyCreated{Name: "old",
		Allow: map[string][]string{"KEY:GENERATE": {"*"}, "key:decrypt": {"*"}, "KEY:DECRYPTT": {"*"}},
		Deny:  map[string][]string{"key:decrypt": {"k"}}})
	seq, _, err := s.Store.Append(ctx, ledger.Event{Type: ledger.TypePolicyCreated, ID: commands.NewID(), Time: time.Now().UTC(),
		Actor: s.RootID, Enclave: "e", Aggregate: ledger.PolicySubject("e", "old"), CommandID: commands.NewID(), Payload: payload},
		ledger.Expect{Any: true})
	mustOK(t, err)
	mustOK(t, s.Proj.WaitFor(ctx, seq))
	mustOK(t, root.AssignPolicy(ctx, "e", userID, "old"))

	s = s.restart() // replay
	user := s.client(userKey)
	g, err := user.GenerateKey(ctx, "e", "k", 0, nil, 0)
	mustOK(t, err)
	if _, err := user.Decrypt(ctx, "e", "k", 0, g.Ciphertext, nil); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("Decrypt under an old lower-case deny err = %v, want 403", err)
	}
}
