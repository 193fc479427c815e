package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestCommandNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cmd   Command
		code  uint16
		name  string
		write bool
	}{
		{CmdClusterAddNode, 1, "CLUSTER:ADDNODE", true},
		{CmdClusterRemoveNode, 2, "CLUSTER:REMOVENODE", true},
		{CmdClusterStatus, 3, "CLUSTER:STATUS", false},
		{CmdClusterEdit, 4, "CLUSTER:EDIT", true},
		{CmdClusterAddHSM, 5, "CLUSTER:ADDHSM", true},
		{CmdClusterRemoveHSM, 6, "CLUSTER:REMOVEHSM", true},
		{CmdEnclaveCreate, 101, "ENCLAVE:CREATE", true},
		{CmdEnclaveDelete, 102, "ENCLAVE:DELETE", true},
		{CmdEnclaveStatus, 103, "ENCLAVE:STATUS", false},
		{CmdEnclaveList, 104, "ENCLAVE:LIST", false},
		{CmdKeyCreate, 201, "KEY:CREATE", true},
		{CmdKeyDelete, 202, "KEY:DELETE", true},
		{CmdKeyImport, 203, "KEY:IMPORT", true},
		{CmdKeyStatus, 204, "KEY:STATUS", false},
		{CmdKeyEncrypt, 205, "KEY:ENCRYPT", false},
		{CmdKeyDecrypt, 206, "KEY:DECRYPT", false},
		{CmdKeyGenerate, 207, "KEY:GENERATE", false},
		{CmdKeyList, 208, "KEY:LIST", false},
		{CmdKeyListVersions, 209, "KEY:LISTVERSIONS", false},
		{CmdKeyMAC, 210, "KEY:MAC", false},
		{CmdPolicyCreate, 301, "POLICY:CREATE", true},
		{CmdPolicyDelete, 302, "POLICY:DELETE", true},
		{CmdPolicyAssign, 303, "POLICY:ASSIGN", true},
		{CmdPolicyGet, 304, "POLICY:GET", false},
		{CmdPolicyStatus, 305, "POLICY:STATUS", false},
		{CmdPolicyList, 306, "POLICY:LIST", false},
		{CmdIdentityCreate, 401, "IDENTITY:CREATE", true},
		{CmdIdentityDelete, 402, "IDENTITY:DELETE", true},
		{CmdIdentityStatus, 403, "IDENTITY:STATUS", false},
		{CmdIdentityList, 404, "IDENTITY:LIST", false},
	}
	if len(tests) != len(Commands()) {
		t.Fatalf("Commands() has %d entries, table %d", len(Commands()), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if uint16(tt.cmd) != tt.code {
				t.Errorf("code = %d, want %d", tt.cmd, tt.code)
			}
			if Commands()[i] != tt.cmd {
				t.Errorf("Commands()[%d] = %v, want %v", i, Commands()[i], tt.cmd)
			}
			if got := tt.cmd.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if !tt.cmd.Known() {
				t.Error("Known() = false, want true")
			}
			if got := tt.cmd.IsWrite(); got != tt.write {
				t.Errorf("IsWrite() = %v, want %v", got, tt.write)
			}
			for _, text := range []string{tt.name, strings.ToLower(tt.name), strings.ToTitle(tt.name[:1]) + strings.ToLower(tt.name[1:])} {
				got, err := ParseCommand(text)
				if err != nil || got != tt.cmd {
					t.Errorf("ParseCommand(%q) = %v, %v; want %v, nil", text, got, err, tt.cmd)
				}
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	for _, c := range []Command{0, 7, 100, 211, 405, 0xffff} {
		if c.Known() || c.IsWrite() {
			t.Errorf("Command(%d): Known=%v IsWrite=%v, want false false", c, c.Known(), c.IsWrite())
		}
		if !strings.HasPrefix(c.String(), "Command(") {
			t.Errorf("Command(%d).String() = %q", c, c.String())
		}
	}
	for _, text := range []string{"", "KEY", "KEY:", "KEY:GENERATE ", "Command(207)", "207"} {
		if _, err := ParseCommand(text); !errors.Is(err, ErrUnknownCommand) {
			t.Errorf("ParseCommand(%q) err = %v, want ErrUnknownCommand", text, err)
		}
	}
}
