package wire

import (
	"strings"
	"testing"
)

func TestCommandScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cmd       Command
		scope     Scope
		inEnclave bool
	}{
		{CmdClusterAddNode, ScopeCluster, false},
		{CmdClusterRemoveHSM, ScopeCluster, false},
		{CmdEnclaveCreate, ScopeEnclave, false},
		{CmdEnclaveList, ScopeEnclave, false},
		{CmdKeyCreate, ScopeKey, true},
		{CmdKeyDecrypt, ScopeKey, true},
		{CmdKeyMAC, ScopeKey, true},
		{CmdPolicyAssign, ScopePolicy, true},
		{CmdPolicyList, ScopePolicy, true},
		{CmdIdentityCreate, ScopeIdentity, true},
		{CmdIdentityList, ScopeIdentity, true},
		// Codes that name no command have no scope, whatever their hundred.
		{0, ScopeUnknown, false},
		{7, ScopeUnknown, false},
		{150, ScopeUnknown, false},
		{211, ScopeUnknown, false},
		{307, ScopeUnknown, false},
		{999, ScopeUnknown, false},
		{65535, ScopeUnknown, false},
	}
	for _, tt := range tests {
		if got := tt.cmd.Scope(); got != tt.scope {
			t.Errorf("%v.Scope() = %v, want %v", tt.cmd, got, tt.scope)
		}
		if got := tt.cmd.Scope().InEnclave(); got != tt.inEnclave {
			t.Errorf("%v.Scope().InEnclave() = %v, want %v", tt.cmd, got, tt.inEnclave)
		}
	}
}

// TestScopeNamesCommand: every known command's text name starts with its
// scope's name, and no known command is without scope.
func TestScopeNamesCommand(t *testing.T) {
	t.Parallel()
	for _, c := range Commands() {
		s := c.Scope()
		if s == ScopeUnknown {
			t.Errorf("%v has no scope", c)
		}
		if !strings.HasPrefix(c.String(), s.String()+":") {
			t.Errorf("%v has scope %v", c, s)
		}
	}
	if got := ScopeUnknown.String(); got != "UNKNOWN" {
		t.Errorf("ScopeUnknown.String() = %q", got)
	}
}
