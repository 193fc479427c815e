package commands

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// Env is what Decide needs besides the state: who asks, when, the
// command's idempotency id, and a sealer that creates sealed key material
// inside hsm (raw == nil: generate fresh material).
type Env struct {
	Now       time.Time
	Actor     string
	CommandID string
	EventID   string
	Seal      func(kt hsm.KeyType, raw, hmacKey, aad []byte) (sealed []byte, fingerprint string, err error)
}

// Decision is the outcome of a command: one event to append with its
// concurrency expectation, sealed material to store before the event, and
// secret refs (or wildcards) to erase once the event is stored.
type Decision struct {
	Event  ledger.Event
	Expect ledger.Expect
	Put    map[string][]byte
	Erase  []string
}

// Decide checks cmd against the state and returns the event it produces.
// It does no I/O; it only reads s.
func Decide(s *projections.State, cmd Command, env Env) (Decision, error) {
	if !s.Initialized {
		return Decision{}, ErrNotInitialized
	}
	cmd, err := check(s, cmd) // authorisation first (batch.go)
	if err != nil {
		return Decision{}, err
	}
	if err := validate(cmd); err != nil {
		return Decision{}, err
	}
	d := decision{s: s, env: env}
	switch c := cmd.(type) {
	case CreateEnclave:
		return d.createEnclave(c)
	case DeleteEnclave:
		return d.deleteEnclave(c)
	}

	e := s.Enclaves[cmd.scope()]
	if e == nil {
		return Decision{}, ErrEnclaveNotFound
	}
	switch c := cmd.(type) {
	case CreateKey:
		return d.createKey(e, c)
	case ImportKey:
		return d.importKey(e, c)
	case DeleteKey:
		return d.deleteKey(e, c, "")
	case DisableKey:
		return d.disableKey(e, c)
	case EnableKey:
		return d.enableKey(e, c)
	case ScheduleKeyDeletion:
		return d.scheduleKeyDeletion(e, c)
	case RestoreKey:
		return d.restoreKey(e, c)
	case DestroyScheduledKey:
		return d.destroyScheduledKey(e, c)
	case ReleaseKeyName:
		return d.releaseKeyName(e, c)
	case ConfigureTransitKey:
		return d.configureTransitKey(e, c)
	case SetAppRole:
		return d.setAppRole(e, c)
	case AddAppRoleSecretID:
		return d.addAppRoleSecretID(e, c)
	case DeleteAppRole:
		return d.deleteAppRole(e, c)
	case IssueToken:
		return d.issueToken(e, c)
	case RenewToken:
		return d.renewToken(e, c)
	case RevokeToken:
		return d.revokeToken(e, c)
	case CreateIdentity:
		return d.createIdentity(e, c)
	case DeleteIdentity:
		return d.deleteIdentity(e, c)
	case AssignPolicy:
		return d.assignPolicy(e, c)
	case CreatePolicy:
		return d.createPolicy(e, c)
	case DeletePolicy:
		return d.deletePolicy(e, c)
	}
	return Decision{}, refuse(ErrInvalidArgument, "unknown command %T", cmd)
}

// decision builds the Decision of one command: one method per command,
// in the file of its aggregate (decide_enclave.go, decide_key.go,
// decide_identity.go, decide_policy.go).
type decision struct {
	s     *projections.State
	env   Env
	put   map[string][]byte
	erase []string
}

// event returns the Decision that appends one event of type typ with
// payload on subject, expecting the subject's last sequence in d.s.
func (d *decision) event(enclave, subject, typ string, payload any) (Decision, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return Decision{}, fmt.Errorf("commands: encode %s: %w", typ, err)
	}
	ev := ledger.Event{
		Type: typ, ID: d.env.EventID, Time: d.env.Now.UTC(), Actor: d.env.Actor,
		Enclave: enclave, Aggregate: subject, CommandID: d.env.CommandID, Payload: b,
	}
	return Decision{
		Event:  ev,
		Expect: ledger.Expect{Subject: subject, Seq: d.s.LastSeq(subject), At: d.s.SubjectsAt()},
		Put:    d.put,
		Erase:  d.erase,
	}, nil
}
