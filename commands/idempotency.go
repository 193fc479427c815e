package commands

import (
	"encoding/json"
	"errors"
	"slices"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
)

// ErrCommandIDReused: a command id that was already used, on the same
// aggregate, for a different command (another event type, or an import of
// other material). Nothing is written.
var ErrCommandIDReused = errors.New("commands: command id already used for another command on this key, identity, policy or enclave")

// Result is what Run did: the event appended, or, for a replayed command
// id, the event the first execution appended.
type Result struct {
	Seq      uint64
	Event    ledger.Event // Seq is set
	Replayed bool         // the command id was already applied; nothing was written now
}

// target returns the aggregate subject cmd writes to and the event types
// it can produce; ok is false for a command it does not know (a replay of
// one is then found by Append's duplicate check alone).
func target(cmd Command) (aggregate string, types []string, ok bool) {
	key := func(enclave, name string, types ...string) (string, []string, bool) {
		return ledger.KeySubject(enclave, name), types, true
	}
	switch c := cmd.(type) {
	case CreateEnclave:
		return ledger.EnclaveSubject(c.Name), []string{ledger.TypeEnclaveCreated}, true
	case DeleteEnclave:
		return ledger.EnclaveSubject(c.Name), []string{ledger.TypeEnclaveDeleted}, true
	case CreateKey:
		return key(c.Enclave, c.Name, ledger.TypeKeyCreated)
	case ImportKey:
		return key(c.Enclave, c.Name, ledger.TypeKeyImported)
	case DeleteKey:
		return key(c.Enclave, c.Name, ledger.TypeKeyDeleted, ledger.TypeKeyVersionDeleted)
	case DestroyScheduledKey:
		return key(c.Enclave, c.Name, ledger.TypeKeyDeleted)
	case DisableKey:
		return key(c.Enclave, c.Name, ledger.TypeKeyDisabled)
	case EnableKey:
		return key(c.Enclave, c.Name, ledger.TypeKeyEnabled)
	case ScheduleKeyDeletion:
		return key(c.Enclave, c.Name, ledger.TypeKeyDeletionScheduled)
	case RestoreKey:
		return key(c.Enclave, c.Name, ledger.TypeKeyRestored)
	case ReleaseKeyName:
		return key(c.Enclave, c.Name, ledger.TypeKeyNameReleased)
	case CreateIdentity:
		return ledger.IdentitySubject(c.Enclave, c.Identity), []string{ledger.TypeIdentityCreated}, true
	case DeleteIdentity:
		return ledger.IdentitySubject(c.Enclave, c.Identity), []string{ledger.TypeIdentityDeleted}, true
	case AssignPolicy:
		return ledger.IdentitySubject(c.Enclave, c.Identity), []string{ledger.TypePolicyAssigned}, true
	case CreatePolicy:
		return ledger.PolicySubject(c.Enclave, c.Name), []string{ledger.TypePolicyCreated}, true
	case DeletePolicy:
		return ledger.PolicySubject(c.Enclave, c.Name), []string{ledger.TypePolicyDeleted}, true
	}
	return "", nil, false
}

// sameCommand reports whether ev, the event stored under cmd's command id
// on cmd's aggregate, is what cmd would have produced: the same kind of
// event and, for an import, the same material. Only then may a replay
// answer with ev's result.
func sameCommand(cmd Command, ev ledger.Event) bool {
	agg, types, ok := target(cmd)
	if !ok {
		return false
	}
	if ev.Aggregate != agg || !slices.Contains(types, ev.Type) {
		return false
	}
	if c, ok := cmd.(ImportKey); ok {
		var p ledger.KeyCreated
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			return false
		}
		return p.Fingerprint == hsm.Fingerprint(c.Material)
	}
	return true
}
