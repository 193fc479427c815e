package commands

import (
	"fmt"
	"time"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// createKey decides CreateKey: key.created.v1 with fresh material.
func (d *decision) createKey(e *projections.Enclave, c CreateKey) (Decision, error) {
	return d.newVersion(e, c.Name, c.Type, nil, nil, c.AddVersion, nil)
}

// importKey decides ImportKey: key.imported.v1 with the caller's
// material, or ErrUnchanged / ErrSkipped as c.OnConflict says.
func (d *decision) importKey(e *projections.Enclave, c ImportKey) (Decision, error) {
	if len(c.Material) != 32 {
		return Decision{}, refuse(ErrInvalidArgument, "imported key must be 32 bytes, got %d", len(c.Material))
	}
	src := ledger.ImportSource{Kind: "api"}
	if c.Source != nil {
		src = *c.Source
	}
	addVersion := c.AddVersion
	if k := e.Keys[c.Name]; k != nil && !addVersion {
		fp := hsm.Fingerprint(c.Material)
		for _, v := range k.Versions() {
			if v.Fingerprint() == fp {
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
}

// disableKey decides DisableKey: key.disabled.v1.
func (d *decision) disableKey(e *projections.Enclave, c DisableKey) (Decision, error) {
	if !hasKeyVersion(e, c.Name, c.Version) {
		return Decision{}, ErrKeyNotFound
	}
	return d.event(e.Name, ledger.KeySubject(e.Name, c.Name), ledger.TypeKeyDisabled, ledger.KeyDisabled{Name: c.Name, Version: c.Version})
}

// enableKey decides EnableKey: key.enabled.v1.
func (d *decision) enableKey(e *projections.Enclave, c EnableKey) (Decision, error) {
	if !hasKeyVersion(e, c.Name, c.Version) {
		return Decision{}, ErrKeyNotFound
	}
	return d.event(e.Name, ledger.KeySubject(e.Name, c.Name), ledger.TypeKeyEnabled, ledger.KeyEnabled{Name: c.Name, Version: c.Version})
}

// hasKeyVersion reports whether e has the key name and, unless version
// is 0 (the whole key), that live version of it.
func hasKeyVersion(e *projections.Enclave, name string, version uint32) bool {
	k := e.Keys[name]
	return k != nil && (version == 0 || k.Version(version) != nil)
}

// scheduleKeyDeletion decides ScheduleKeyDeletion:
// key.deletion_scheduled.v1 with a deadline in the future.
func (d *decision) scheduleKeyDeletion(e *projections.Enclave, c ScheduleKeyDeletion) (Decision, error) {
	if e.Keys[c.Name] == nil {
		return Decision{}, ErrKeyNotFound
	}
	if !c.Deadline.After(d.env.Now) {
		return Decision{}, refuse(ErrInvalidArgument, "deletion deadline %s is not in the future", c.Deadline.Format(time.RFC3339))
	}
	return d.event(e.Name, ledger.KeySubject(e.Name, c.Name), ledger.TypeKeyDeletionScheduled,
		ledger.KeyDeletionScheduled{Name: c.Name, Deadline: c.Deadline.UTC()})
}

// restoreKey decides RestoreKey: key.restored.v1 for a key pending
// deletion.
func (d *decision) restoreKey(e *projections.Enclave, c RestoreKey) (Decision, error) {
	k := e.Keys[c.Name]
	if k == nil {
		return Decision{}, ErrKeyNotFound
	}
	if k.DeletionDeadline().IsZero() {
		return Decision{}, ErrNotPending
	}
	return d.event(e.Name, ledger.KeySubject(e.Name, c.Name), ledger.TypeKeyRestored, ledger.KeyRestored{Name: c.Name})
}

// destroyScheduledKey decides DestroyScheduledKey: key.deleted.v1 with
// reason "scheduled", once the deadline has passed.
func (d *decision) destroyScheduledKey(e *projections.Enclave, c DestroyScheduledKey) (Decision, error) {
	k := e.Keys[c.Name]
	if k == nil {
		return Decision{}, ErrKeyNotFound
	}
	if k.DeletionDeadline().IsZero() || d.env.Now.Before(k.DeletionDeadline()) {
		return Decision{}, ErrNotPending
	}
	return d.deleteKey(e, DeleteKey{Enclave: e.Name, Name: c.Name, All: true}, "scheduled")
}

// releaseKeyName decides ReleaseKeyName: key.name_released.v1 for the
// name of a destroyed key.
func (d *decision) releaseKeyName(e *projections.Enclave, c ReleaseKeyName) (Decision, error) {
	if e.Tombstones[c.Name] == nil {
		return Decision{}, fmt.Errorf("%w: %q is not the name of a destroyed key", ErrKeyNotFound, c.Name)
	}
	return d.event(e.Name, ledger.KeySubject(e.Name, c.Name), ledger.TypeKeyNameReleased, ledger.KeyNameReleased{Name: c.Name})
}

// newVersion decides a new version of key name, the first of a new key
// or (addVersion) one more: key.created.v1 with fresh material (raw ==
// nil) or key.imported.v1 with raw.
func (d *decision) newVersion(e *projections.Enclave, name, typ string, raw, hmacKey []byte, addVersion bool, src *ledger.ImportSource) (Decision, error) {
	if typ == "" {
		typ = d.s.DefaultType
	}
	kt, err := hsm.ParseKeyType(typ)
	if err != nil {
		return Decision{}, refuse(ErrInvalidArgument, "key type %q: want AES256 or ChaCha20", typ)
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
	// The reference names this attempt (from the event id), so that a
	// losing attempt can erase its own material and never anyone else's.
	ref := ledger.AttemptSecretRef(e.Name, name, version, ledger.AttemptOf(d.env.EventID))
	d.put = map[string][]byte{ref: sealed}
	typEv := ledger.TypeKeyCreated
	if raw != nil {
		typEv = ledger.TypeKeyImported
	}
	return d.event(e.Name, ledger.KeySubject(e.Name, name), typEv, ledger.KeyCreated{
		Name: name, Version: version, Type: string(kt), SecretRef: ref, Fingerprint: fp, Source: src,
	})
}

// deleteKey decides DeleteKey (and, with reason "scheduled", a due
// scheduled deletion): key.deleted.v1 for the whole key or its last
// version, otherwise key.version_deleted.v1.
func (d *decision) deleteKey(e *projections.Enclave, c DeleteKey, reason string) (Decision, error) {
	k := e.Keys[c.Name]
	if k == nil {
		return Decision{}, ErrKeyNotFound
	}
	subject := ledger.KeySubject(e.Name, c.Name)
	if c.All || (len(k.Versions()) == 1 && (c.Version == 0 || k.Version(c.Version) != nil)) {
		p := ledger.KeyDeleted{Name: c.Name, Reason: reason}
		for _, v := range k.SortedVersions() {
			p.Versions = append(p.Versions, v.Version)
			p.Fingerprints = append(p.Fingerprints, v.Fingerprint())
			d.erase = append(d.erase, v.SecretRef(e.Name, k.Name))
		}
		return d.event(e.Name, subject, ledger.TypeKeyDeleted, p)
	}
	v := k.Latest()
	if c.Version != 0 {
		v = k.Version(c.Version)
	}
	if v == nil {
		return Decision{}, ErrKeyNotFound
	}
	d.erase = []string{v.SecretRef(e.Name, k.Name)}
	return d.event(e.Name, subject, ledger.TypeKeyVersionDeleted,
		ledger.KeyVersionDeleted{Name: c.Name, Version: v.Version, Fingerprint: v.Fingerprint()})
}
