package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
)

// packagePrefixes are the prefixes of the domain packages' error texts,
// meant for logs: no client message may carry one.
var packagePrefixes = []string{"api: ", "wire: ", "commands: ", "projections: ", "hsm: ", "ledger: "}

func checkNoPrefix(t *testing.T, msg string) {
	t.Helper()
	for _, p := range packagePrefixes {
		if strings.Contains(msg, p) {
			t.Errorf("client message %q carries the package prefix %q", msg, p)
		}
	}
}

// TestClientMessagesComeFromTheError: refusals found in wire, commands
// and projections reach the client as the error's own client text with
// its detail, exactly, and without any package prefix.
func TestClientMessagesComeFromTheError(t *testing.T) {
	s := newStack(t)
	c := s.client("")
	mustOK(t, c.CreateEnclave(ctx, "e1"))
	frame := func(cmd wire.Command, m interface{ MarshalProto() []byte }) []byte {
		return wire.AppendFrame(nil, cmd, m.MarshalProto())
	}
	good := frame(wire.CmdKeyCreate, &wire.CreateKeyRequest{Name: "new"})
	tests := []struct {
		name   string
		body   []byte
		status int
		msg    string
	}{
		{"NoFrames", nil, 400, "malformed request: body contains no frames"},
		{"TruncatedHeader", good[:4], 400, "malformed request: truncated frame header: frame 0 at offset 0"},
		{"LengthPastBody", good[:len(good)-1], 400, fmt.Sprintf("malformed request: frame length exceeds body: frame 0 wants %d bytes, %d left", len(good)-wire.FrameHeaderSize, len(good)-1-wire.FrameHeaderSize)},
		{"BadUTF8", wire.AppendFrame(nil, wire.CmdKeyCreate, []byte{0x0a, 0x01, 0xff}), 400, "malformed KEY:CREATE message: malformed message: field 1: invalid UTF-8"},
		{"InvalidName", frame(wire.CmdKeyCreate, &wire.CreateKeyRequest{Name: "a.b"}), 400, `invalid name: "a.b"`},
		{"PolicyUnknownCommand", frame(wire.CmdPolicyCreate, &wire.CreatePolicyRequest{Name: "p", Allow: map[string][]string{"KEY:STEAL": {"*"}}}), 400, `invalid policy: allow: unknown command: "KEY:STEAL"`},
		{"PolicyBadPattern", frame(wire.CmdPolicyCreate, &wire.CreatePolicyRequest{Name: "p", Deny: map[string][]string{"KEY:DECRYPT": {"a*b"}}}), 400, `invalid policy: deny: invalid policy pattern: KEY:DECRYPT: "a*b": want a name, prefix* or *`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := s.post(t, "e1", tt.body, true)
			var m struct{ Message string }
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if status != tt.status || m.Message != tt.msg {
				t.Fatalf("got %d %q, want %d %q", status, m.Message, tt.status, tt.msg)
			}
			checkNoPrefix(t, m.Message)
		})
	}
	if _, err := c.GetPolicy(ctx, "e1", "p"); err == nil {
		t.Fatal("a refused policy was stored")
	}
}

// TestTimeTravelBeyondHeadText: a point beyond the ledger head is a 400
// whose message says so with the numbers, without the "projections: "
// prefix it once carried.
func TestTimeTravelBeyondHeadText(t *testing.T) {
	s := newStack(t)
	r := s.client("")
	mustOK(t, r.CreateEnclave(ctx, "t"))
	head, err := s.Store.Head(ctx)
	mustOK(t, err)
	_, err = r.LedgerState(ctx, client.Point{Seq: head + 1}, "")
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *client.Error", err)
	}
	want := fmt.Sprintf("sequence is beyond the ledger head: %d > %d", head+1, head)
	if ce.Status != 400 || ce.Message != want {
		t.Fatalf("got %d %q, want 400 %q", ce.Status, ce.Message, want)
	}
}
