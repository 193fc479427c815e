package commands

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
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
		if s.Enclaves[c.Name] != nil {
			return Decision{}, ErrEnclaveExists
		}
		return d.event("", ledger.EnclaveSubject(c.Name), ledger.TypeEnclaveCreated, ledger.EnclaveCreated{Name: c.Name})
	case DeleteEnclave:
		e := s.Enclaves[c.Name]
		if e == nil {
			return Decision{}, ErrEnclaveNotFound
		}
		var fps []string
		for _, k := range e.Keys {
			for _, v := range k.Versions {
				fps = append(fps, v.Fingerprint)
			}
		}
		slices.Sort(fps)
		d.erase = []string{c.Name + ".>"}
		return d.event("", ledger.EnclaveSubject(c.Name), ledger.TypeEnclaveDeleted, ledger.EnclaveDeleted{Name: c.Name, Fingerprints: fps})
	}

	e := s.Enclaves[cmd.scope()]
	if e == nil {
		return Decision{}, ErrEnclaveNotFound
	}
	switch c := cmd.(type) {
	case CreateKey:
		return d.newVersion(e, c.Name, c.Type, nil, nil, c.AddVersion, nil)
	case ImportKey:
		if len(c.Material) != 32 {
			return Decision{}, fmt.Errorf("%w: imported key must be 32 bytes, got %d", ErrInvalidArgument, len(c.Material))
		}
		src := ledger.ImportSource{Kind: "api"}
		if c.Source != nil {
			src = *c.Source
		}
		addVersion := c.AddVersion
		if k := e.Keys[c.Name]; k != nil && !addVersion {
			fp := hsm.Fingerprint(c.Material)
			for _, v := range k.Versions {
				if v.Fingerprint == fp {
					return Decision{}, ErrUnchanged
				}
			}
			switch c.OnConflict {
			case ConflictSkip:
				return Decision{}, ErrSkipped
			case ConflictReplace:
				addVersion, src.Replaced = true, true
			}
		}
		return d.newVersion(e, c.Name, c.Type, c.Material, c.HMACKey, addVersion, &src)
	case DeleteKey:
		return d.deleteKey(e, c, "")
	case DisableKey, EnableKey:
		return d.setKeyState(e, c)
	case ScheduleKeyDeletion:
		k := e.Keys[c.Name]
		if k == nil {
			return Decision{}, ErrKeyNotFound
		}
		if !c.Deadline.After(env.Now) {
			return Decision{}, fmt.Errorf("%w: deletion deadline %s is not in the future", ErrInvalidArgument, c.Deadline.Format(time.RFC3339))
		}
		return d.event(e.Name, ledger.KeySubject(e.Name, c.Name), ledger.TypeKeyDeletionScheduled,
			ledger.KeyDeletionScheduled{Name: c.Name, Deadline: c.Deadline.UTC()})
	case RestoreKey:
		k := e.Keys[c.Name]
		if k == nil {
			return Decision{}, ErrKeyNotFound
		}
		if k.DeletionDeadline.IsZero() {
			return Decision{}, ErrNotPending
		}
		return d.event(e.Name, ledger.KeySubject(e.Name, c.Name), ledger.TypeKeyRestored, ledger.KeyRestored{Name: c.Name})
	case DestroyScheduledKey:
		k := e.Keys[c.Name]
		if k == nil {
			return Decision{}, ErrKeyNotFound
		}
		if k.DeletionDeadline.IsZero() || env.Now.Before(k.DeletionDeadline) {
			return Decision{}, ErrNotPending
		}
		return d.deleteKey(e, DeleteKey{Enclave: e.Name, Name: c.Name, All: true}, "scheduled")
	case ReleaseKeyName:
		if e.Tombstones[c.Name] == nil {
			return Decision{}, fmt.Errorf("%w: %q is not the name of a destroyed key", ErrKeyNotFound, c.Name)
		}
		return d.event(e.Name, ledger.KeySubject(e.Name, c.Name), ledger.TypeKeyNameReleased, ledger.KeyNameReleased{Name: c.Name})
	case CreateIdentity:
		if c.Identity == s.RootIdentity {
			return Decision{}, fmt.Errorf("%w: the root identity cannot be an enclave identity", ErrInvalidArgument)
		}
		p := ledger.IdentityCreated{Identity: c.Identity, Privilege: c.Privilege, ServiceAccount: c.ServiceAccount, Tags: c.Tags}
		if p.Privilege == "" {
			p.Privilege = ledger.PrivilegeUser
		}
		if c.ServiceAccount {
			p.Parent = env.Actor
		}
		return d.event(e.Name, ledger.IdentitySubject(e.Name, c.Identity), ledger.TypeIdentityCreated, p)
	case DeleteIdentity:
		if e.Identities[c.Identity] == nil {
			return Decision{}, ErrIdentityNotFound
		}
		var sas []string
		for _, id := range e.Identities {
			if id.ServiceAccount && id.Parent == c.Identity {
				sas = append(sas, id.Identity)
			}
		}
		slices.Sort(sas)
		return d.event(e.Name, ledger.IdentitySubject(e.Name, c.Identity), ledger.TypeIdentityDeleted,
			ledger.IdentityDeleted{Identity: c.Identity, ServiceAccounts: sas})
	case CreatePolicy:
		// The API parses rules at its edge; parsing again here keeps
		// every writer (migration, tools, tests) from storing a rule
		// that would be ignored.
		allow, err := wire.ParseRules(c.Allow)
		if err != nil {
			return Decision{}, fmt.Errorf("%w: allow rules: %w", ErrInvalidArgument, err)
		}
		deny, err := wire.ParseRules(c.Deny)
		if err != nil {
			return Decision{}, fmt.Errorf("%w: deny rules: %w", ErrInvalidArgument, err)
		}
		return d.event(e.Name, ledger.PolicySubject(e.Name, c.Name), ledger.TypePolicyCreated,
			ledger.PolicyCreated{Name: c.Name, Allow: allow, Deny: deny})
	case DeletePolicy:
		if e.Policies[c.Name] == nil {
			return Decision{}, ErrPolicyNotFound
		}
		return d.event(e.Name, ledger.PolicySubject(e.Name, c.Name), ledger.TypePolicyDeleted, ledger.PolicyDeleted{Name: c.Name})
	case AssignPolicy:
		if e.Identities[c.Identity] == nil {
			return Decision{}, ErrIdentityNotFound
		}
		if e.Policies[c.Policy] == nil {
			return Decision{}, ErrPolicyNotFound
		}
		return d.event(e.Name, ledger.IdentitySubject(e.Name, c.Identity), ledger.TypePolicyAssigned,
			ledger.PolicyAssigned{Identity: c.Identity, Policy: c.Policy})
	}
	return Decision{}, fmt.Errorf("%w: unknown command %T", ErrInvalidArgument, cmd)
}

type decision struct {
	s     *projections.State
	env   Env
	put   map[string][]byte
	erase []string
}

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
		Expect: ledger.Expect{Subject: subject, Seq: d.s.Subjects[subject]},
		Put:    d.put,
		Erase:  d.erase,
	}, nil
}

func (d *decision) newVersion(e *projections.Enclave, name, typ string, raw, hmacKey []byte, addVersion bool, src *ledger.ImportSource) (Decision, error) {
	if typ == "" {
		typ = d.s.DefaultType
	}
	kt, err := hsm.ParseKeyType(typ)
	if err != nil {
		return Decision{}, fmt.Errorf("%w: key type %q: want AES256 or ChaCha20", ErrInvalidArgument, typ)
	}
	k := e.Keys[name]
	version := uint32(1)
	switch {
	case k == nil && e.Tombstones[name] != nil:
		return Decision{}, ErrKeyTombstoned
	case k != nil && !addVersion:
		return Decision{}, ErrKeyExists
	case k == nil && addVersion:
		return Decision{}, ErrKeyNotFound
	case k != nil:
		version = k.MaxVer + 1
	}
	sealed, fp, err := d.env.Seal(kt, raw, hmacKey, hsm.VersionAAD(e.Name, name, version))
	if err != nil {
		return Decision{}, fmt.Errorf("commands: seal %s/%s v%d: %w", e.Name, name, version, err)
	}
	// The reference names this attempt (the event id), so that a losing
	// attempt can erase its own material and never anyone else's.
	ref := ledger.AttemptSecretRef(e.Name, name, version, d.env.EventID)
	d.put = map[string][]byte{ref: sealed}
	typEv := ledger.TypeKeyCreated
	if raw != nil {
		typEv = ledger.TypeKeyImported
	}
	return d.event(e.Name, ledger.KeySubject(e.Name, name), typEv, ledger.KeyCreated{
		Name: name, Version: version, Type: string(kt), SecretRef: ref, Fingerprint: fp, Source: src,
	})
}

func (d *decision) setKeyState(e *projections.Enclave, cmd Command) (Decision, error) {
	var name, typ string
	var version uint32
	var payload any
	switch c := cmd.(type) {
	case DisableKey:
		name, version, typ, payload = c.Name, c.Version, ledger.TypeKeyDisabled, ledger.KeyDisabled{Name: c.Name, Version: c.Version}
	case EnableKey:
		name, version, typ, payload = c.Name, c.Version, ledger.TypeKeyEnabled, ledger.KeyEnabled{Name: c.Name, Version: c.Version}
	}
	k := e.Keys[name]
	if k == nil || (version != 0 && k.Versions[version] == nil) {
		return Decision{}, ErrKeyNotFound
	}
	return d.event(e.Name, ledger.KeySubject(e.Name, name), typ, payload)
}

func (d *decision) deleteKey(e *projections.Enclave, c DeleteKey, reason string) (Decision, error) {
	k := e.Keys[c.Name]
	if k == nil {
		return Decision{}, ErrKeyNotFound
	}
	subject := ledger.KeySubject(e.Name, c.Name)
	if c.All || (len(k.Versions) == 1 && (c.Version == 0 || k.Versions[c.Version] != nil)) {
		p := ledger.KeyDeleted{Name: c.Name, Reason: reason}
		for _, v := range k.SortedVersions() {
			p.Versions = append(p.Versions, v.Version)
			p.Fingerprints = append(p.Fingerprints, v.Fingerprint)
			d.erase = append(d.erase, v.SecretRef)
		}
		return d.event(e.Name, subject, ledger.TypeKeyDeleted, p)
	}
	v := k.Latest()
	if c.Version != 0 {
		v = k.Versions[c.Version]
	}
	if v == nil {
		return Decision{}, ErrKeyNotFound
	}
	d.erase = []string{v.SecretRef}
	return d.event(e.Name, subject, ledger.TypeKeyVersionDeleted,
		ledger.KeyVersionDeleted{Name: c.Name, Version: v.Version, Fingerprint: v.Fingerprint})
}
