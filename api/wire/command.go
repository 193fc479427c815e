package wire

import (
	"fmt"
	"strings"
)

// ErrUnknownCommand is returned by ParseCommand for a text that names no command.
var ErrUnknownCommand = newClientError("unknown command")

// Command is the 16-bit code that starts every frame and names the operation
// the frame's message belongs to. Policies refer to commands by their text
// name (String).
type Command uint16

// The command codes of the minkms protocol: the uint16 that starts each
// frame (frame.go), each scope in its own hundred (scope.go).
const (
	CmdClusterAddNode    Command = 1   // CLUSTER:ADDNODE
	CmdClusterRemoveNode Command = 2   // CLUSTER:REMOVENODE
	CmdClusterStatus     Command = 3   // CLUSTER:STATUS
	CmdClusterEdit       Command = 4   // CLUSTER:EDIT
	CmdClusterAddHSM     Command = 5   // CLUSTER:ADDHSM
	CmdClusterRemoveHSM  Command = 6   // CLUSTER:REMOVEHSM
	CmdEnclaveCreate     Command = 101 // ENCLAVE:CREATE
	CmdEnclaveDelete     Command = 102 // ENCLAVE:DELETE
	CmdEnclaveStatus     Command = 103 // ENCLAVE:STATUS
	CmdEnclaveList       Command = 104 // ENCLAVE:LIST
	CmdKeyCreate         Command = 201 // KEY:CREATE
	CmdKeyDelete         Command = 202 // KEY:DELETE
	CmdKeyImport         Command = 203 // KEY:IMPORT
	CmdKeyStatus         Command = 204 // KEY:STATUS
	CmdKeyEncrypt        Command = 205 // KEY:ENCRYPT
	CmdKeyDecrypt        Command = 206 // KEY:DECRYPT
	CmdKeyGenerate       Command = 207 // KEY:GENERATE
	CmdKeyList           Command = 208 // KEY:LIST
	CmdKeyListVersions   Command = 209 // KEY:LISTVERSIONS
	CmdKeyMAC            Command = 210 // KEY:MAC
	CmdPolicyCreate      Command = 301 // POLICY:CREATE
	CmdPolicyDelete      Command = 302 // POLICY:DELETE
	CmdPolicyAssign      Command = 303 // POLICY:ASSIGN
	CmdPolicyGet         Command = 304 // POLICY:GET
	CmdPolicyStatus      Command = 305 // POLICY:STATUS
	CmdPolicyList        Command = 306 // POLICY:LIST
	CmdIdentityCreate    Command = 401 // IDENTITY:CREATE
	CmdIdentityDelete    Command = 402 // IDENTITY:DELETE
	CmdIdentityStatus    Command = 403 // IDENTITY:STATUS
	CmdIdentityList      Command = 404 // IDENTITY:LIST
)

// commandInfo describes one known command.
type commandInfo struct {
	name  string
	write bool
	scope Scope
}

// commandTable returns the name and kind of c, and whether c is known.
// A switch instead of a package-level map keeps the package free of globals.
func commandTable(c Command) (commandInfo, bool) {
	switch c {
	case CmdClusterAddNode:
		return commandInfo{"CLUSTER:ADDNODE", true, ScopeCluster}, true
	case CmdClusterRemoveNode:
		return commandInfo{"CLUSTER:REMOVENODE", true, ScopeCluster}, true
	case CmdClusterStatus:
		return commandInfo{"CLUSTER:STATUS", false, ScopeCluster}, true
	case CmdClusterEdit:
		return commandInfo{"CLUSTER:EDIT", true, ScopeCluster}, true
	case CmdClusterAddHSM:
		return commandInfo{"CLUSTER:ADDHSM", true, ScopeCluster}, true
	case CmdClusterRemoveHSM:
		return commandInfo{"CLUSTER:REMOVEHSM", true, ScopeCluster}, true
	case CmdEnclaveCreate:
		return commandInfo{"ENCLAVE:CREATE", true, ScopeEnclave}, true
	case CmdEnclaveDelete:
		return commandInfo{"ENCLAVE:DELETE", true, ScopeEnclave}, true
	case CmdEnclaveStatus:
		return commandInfo{"ENCLAVE:STATUS", false, ScopeEnclave}, true
	case CmdEnclaveList:
		return commandInfo{"ENCLAVE:LIST", false, ScopeEnclave}, true
	case CmdKeyCreate:
		return commandInfo{"KEY:CREATE", true, ScopeKey}, true
	case CmdKeyDelete:
		return commandInfo{"KEY:DELETE", true, ScopeKey}, true
	case CmdKeyImport:
		return commandInfo{"KEY:IMPORT", true, ScopeKey}, true
	case CmdKeyStatus:
		return commandInfo{"KEY:STATUS", false, ScopeKey}, true
	case CmdKeyEncrypt:
		return commandInfo{"KEY:ENCRYPT", false, ScopeKey}, true
	case CmdKeyDecrypt:
		return commandInfo{"KEY:DECRYPT", false, ScopeKey}, true
	case CmdKeyGenerate:
		return commandInfo{"KEY:GENERATE", false, ScopeKey}, true
	case CmdKeyList:
		return commandInfo{"KEY:LIST", false, ScopeKey}, true
	case CmdKeyListVersions:
		return commandInfo{"KEY:LISTVERSIONS", false, ScopeKey}, true
	case CmdKeyMAC:
		return commandInfo{"KEY:MAC", false, ScopeKey}, true
	case CmdPolicyCreate:
		return commandInfo{"POLICY:CREATE", true, ScopePolicy}, true
	case CmdPolicyDelete:
		return commandInfo{"POLICY:DELETE", true, ScopePolicy}, true
	case CmdPolicyAssign:
		return commandInfo{"POLICY:ASSIGN", true, ScopePolicy}, true
	case CmdPolicyGet:
		return commandInfo{"POLICY:GET", false, ScopePolicy}, true
	case CmdPolicyStatus:
		return commandInfo{"POLICY:STATUS", false, ScopePolicy}, true
	case CmdPolicyList:
		return commandInfo{"POLICY:LIST", false, ScopePolicy}, true
	case CmdIdentityCreate:
		return commandInfo{"IDENTITY:CREATE", true, ScopeIdentity}, true
	case CmdIdentityDelete:
		return commandInfo{"IDENTITY:DELETE", true, ScopeIdentity}, true
	case CmdIdentityStatus:
		return commandInfo{"IDENTITY:STATUS", false, ScopeIdentity}, true
	case CmdIdentityList:
		return commandInfo{"IDENTITY:LIST", false, ScopeIdentity}, true
	}
	return commandInfo{}, false
}

// Commands returns every known command in ascending code order.
func Commands() []Command {
	return []Command{
		CmdClusterAddNode, CmdClusterRemoveNode, CmdClusterStatus, CmdClusterEdit,
		CmdClusterAddHSM, CmdClusterRemoveHSM,
		CmdEnclaveCreate, CmdEnclaveDelete, CmdEnclaveStatus, CmdEnclaveList,
		CmdKeyCreate, CmdKeyDelete, CmdKeyImport, CmdKeyStatus, CmdKeyEncrypt,
		CmdKeyDecrypt, CmdKeyGenerate, CmdKeyList, CmdKeyListVersions, CmdKeyMAC,
		CmdPolicyCreate, CmdPolicyDelete, CmdPolicyAssign, CmdPolicyGet,
		CmdPolicyStatus, CmdPolicyList,
		CmdIdentityCreate, CmdIdentityDelete, CmdIdentityStatus, CmdIdentityList,
	}
}

// String returns the text name of c, such as "KEY:GENERATE", or
// "Command(N)" for an unknown code.
func (c Command) String() string {
	if info, ok := commandTable(c); ok {
		return info.name
	}
	return fmt.Sprintf("Command(%d)", uint16(c))
}

// Known reports whether c is one of the command codes of the protocol.
func (c Command) Known() bool {
	_, ok := commandTable(c)
	return ok
}

// IsWrite reports whether c changes state (create, delete, import, assign,
// cluster membership). Unknown commands are not writes.
func (c Command) IsWrite() bool {
	info, _ := commandTable(c)
	return info.write
}

// Scope returns what c acts on: the cluster, enclaves, or the keys,
// policies or identities inside one enclave. Unknown commands have
// ScopeUnknown.
func (c Command) Scope() Scope {
	info, _ := commandTable(c)
	return info.scope
}

// ParseCommand returns the command whose text name equals text, ignoring case.
// It returns an error wrapping ErrUnknownCommand otherwise.
func ParseCommand(text string) (Command, error) {
	for _, c := range Commands() {
		if strings.EqualFold(c.String(), text) {
			return c, nil
		}
	}
	return 0, refuse(ErrUnknownCommand, "%q", text)
}
