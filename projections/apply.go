package projections

import (
	"fmt"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
)

// Apply folds one event into the state. Unknown event types are an error:
// a reader older than the ledger must not silently drop facts. Each event
// type has one function below, named after it; on decodes its payload.
func (s *State) Apply(ev ledger.Event) error {
	if ev.Seq == 0 {
		return s.apply(ev)
	}
	s.Seq = ev.Seq
	err := s.apply(ev)
	if !s.past {
		s.setSeq(ev.Aggregate, ev.Seq) // after: the key it creates or removes holds it or not
	}
	return err
}

// apply is Apply without the bookkeeping of the stream sequence.
func (s *State) apply(ev ledger.Event) error {
	s.own(ev.Enclave)
	ev.Actor = s.intern(ev.Actor)
	switch ev.Type {
	case ledger.TypeSigningKey, ledger.TypeCheckpoint: // audit trail only (ledger/checkpoint.go)
		return nil
	case ledger.TypeSystemInitialized:
		return on(ev, s.systemInitialized)
	case ledger.TypeHSMAdded:
		return on(ev, s.hsmAdded)
	case ledger.TypeHSMRemoved:
		return on(ev, s.hsmRemoved)
	case ledger.TypeEnclaveCreated:
		return on(ev, s.enclaveCreated)
	case ledger.TypeEnclaveDeleted:
		return on(ev, s.enclaveDeleted)
	}
	e := s.Enclaves[ev.Enclave]
	if e == nil {
		return fmt.Errorf("projections: %s at seq %d: enclave %q does not exist", ev.Type, ev.Seq, ev.Enclave)
	}
	return e.apply(ev)
}

// apply folds an event of one of e's keys, identities or policies.
func (e *Enclave) apply(ev ledger.Event) error {
	e.resetIndexes()
	switch ev.Type {
	case ledger.TypeKeyCreated:
		return on(ev, e.keyCreated)
	case ledger.TypeKeyImported:
		return on(ev, e.keyImported)
	case ledger.TypeKeyVersionDeleted:
		return on(ev, e.keyVersionDeleted)
	case ledger.TypeKeyDeleted:
		return on(ev, e.keyDeleted)
	case ledger.TypeKeyDisabled:
		return on(ev, e.keyDisabled)
	case ledger.TypeKeyEnabled:
		return on(ev, e.keyEnabled)
	case ledger.TypeKeyDeletionScheduled:
		return on(ev, e.keyDeletionScheduled)
	case ledger.TypeKeyRestored:
		return on(ev, e.keyRestored)
	case ledger.TypeKeyNameReleased:
		return on(ev, e.keyNameReleased)
	case ledger.TypeKeyTransitConfigured:
		return on(ev, e.keyTransitConfigured)
	case ledger.TypeIdentityCreated:
		return on(ev, e.identityCreated)
	case ledger.TypeIdentityDeleted:
		return on(ev, e.identityDeleted)
	case ledger.TypePolicyAssigned:
		return on(ev, e.policyAssigned)
	case ledger.TypeAppRoleSet:
		return on(ev, e.appRoleSet)
	case ledger.TypeAppRoleSecretIDAdded:
		return on(ev, e.appRoleSecretIDAdded)
	case ledger.TypeAppRoleDeleted:
		return on(ev, e.appRoleDeleted)
	case ledger.TypeTokenIssued:
		return on(ev, e.tokenIssued)
	case ledger.TypeTokenRenewed:
		return on(ev, e.tokenRenewed)
	case ledger.TypeTokenRevoked:
		return on(ev, e.tokenRevoked)
	case ledger.TypePolicyCreated:
		return on(ev, e.policyCreated)
	case ledger.TypePolicyDeleted:
		return on(ev, e.policyDeleted)
	}
	return fmt.Errorf("projections: unknown event type %q at seq %d", ev.Type, ev.Seq)
}

// on decodes the payload of ev as a T, the payload type named after the
// event, and hands it to fn.
func on[T any](ev ledger.Event, fn func(ledger.Event, T) error) error {
	var p T
	if err := ledger.DecodePayload(ev.Payload, &p); err != nil {
		return fmt.Errorf("projections: decode %s at seq %d: %w", ev.Type, ev.Seq, err)
	}
	return fn(ev, p)
}

func (s *State) systemInitialized(ev ledger.Event, p ledger.SystemInitialized) error {
	s.Initialized, s.SealedREK, s.HSMKeyID = true, p.SealedREK, p.HSMKeyID
	s.RootIdentity, s.DefaultType, s.SealedRootKey = p.RootIdentity, p.DefaultType, p.SealedRootKey
	s.HSMs[p.HSMKeyID] = &HSMSealing{Name: p.HSMName, Kind: p.HSMKind, KeyID: p.HSMKeyID, SealedREK: p.SealedREK, AddedAt: ev.Time, AddedBy: ev.Actor}
	return nil
}

func (s *State) hsmAdded(ev ledger.Event, p ledger.HSMAdded) error {
	s.HSMs[p.KeyID] = &HSMSealing{Name: p.Name, Kind: p.Kind, KeyID: p.KeyID, SealedREK: p.SealedREK, AddedAt: ev.Time, AddedBy: ev.Actor}
	delete(s.RemovedHSMs, p.KeyID)
	return nil
}

func (s *State) hsmRemoved(_ ledger.Event, p ledger.HSMRemoved) error {
	delete(s.HSMs, p.KeyID)
	s.RemovedHSMs[p.KeyID] = true
	return nil
}

func (s *State) enclaveCreated(ev ledger.Event, p ledger.EnclaveCreated) error {
	s.Enclaves[p.Name] = &Enclave{
		Name: p.Name, CreatedAt: ev.Time, CreatedBy: ev.Actor,
		Keys: map[string]*Key{}, Identities: map[string]*Identity{}, Policies: map[string]*Policy{},
		Tombstones: map[string]*Tombstone{}, drop: s.dropped,
	}
	return nil
}

func (s *State) enclaveDeleted(_ ledger.Event, p ledger.EnclaveDeleted) error {
	// s.dropped, not e.drop: a fork deciding the deletion shares e with
	// the state it was forked from, and must not touch its cache.
	if e := s.Enclaves[p.Name]; e != nil && s.dropped != nil {
		for _, k := range e.Keys {
			for _, v := range k.versions {
				s.dropped(v)
			}
		}
	}
	if e := s.Enclaves[p.Name]; e != nil {
		s.retireKeys(e)
	}
	delete(s.Enclaves, p.Name)
	return nil
}

func (e *Enclave) keyCreated(ev ledger.Event, p ledger.KeyCreated) error {
	e.addVersion(ev, p, false)
	return nil
}

func (e *Enclave) keyImported(ev ledger.Event, p ledger.KeyImported) error {
	e.addVersion(ev, p, true)
	return nil
}

// addVersion adds a version created or imported by ev, creating its key
// if it is the first.
func (e *Enclave) addVersion(ev ledger.Event, p ledger.KeyCreated, imported bool) {
	k := e.Keys[p.Name]
	var v *Version
	if k == nil {
		k, v = newKeyCell()
		k.Name, k.created, k.CreatedBy = p.Name, unixNano(ev.Time), ev.Actor
		e.Keys[p.Name] = k
	} else {
		v = new(Version)
		if old := k.Version(p.Version); old != nil {
			e.dropped(old)
		}
	}
	*v = Version{
		Version: p.Version, Type: keyType(p.Type), created: unixNano(ev.Time), CreatedBy: ev.Actor,
		Imported: imported,
	}
	v.setFacts(e.Name, k.Name, p.SecretRef, p.Fingerprint, p.Source)
	if len(k.versions) != 1 || k.versions[0] != v {
		k.putVersion(v)
	}
	k.MaxVer = max(k.MaxVer, p.Version)
	e.touch(p.Name) // after the key exists: the record shares its name
}

func (e *Enclave) keyVersionDeleted(ev ledger.Event, p ledger.KeyVersionDeleted) error {
	e.touch(p.Name)
	if k := e.Keys[p.Name]; k != nil {
		e.dropped(k.removeVersion(p.Version))
		if len(k.versions) == 0 {
			delete(e.Keys, p.Name)
			e.setPending(p.Name, false)
			e.Tombstones[p.Name] = &Tombstone{Name: p.Name, DestroyedAt: ev.Time, DestroyedBy: ev.Actor}
		}
	}
	return nil
}

func (e *Enclave) keyDeleted(ev ledger.Event, p ledger.KeyDeleted) error {
	e.touch(p.Name)
	if k := e.Keys[p.Name]; k != nil {
		e.droppedKey(k, 0)
	}
	delete(e.Keys, p.Name)
	e.setPending(p.Name, false)
	e.Tombstones[p.Name] = &Tombstone{Name: p.Name, DestroyedAt: ev.Time, DestroyedBy: ev.Actor, Reason: p.Reason}
	return nil
}

func (e *Enclave) keyTransitConfigured(ev ledger.Event, p ledger.KeyTransitConfigured) error {
	e.touch(p.Name)
	k := e.Keys[p.Name]
	if k == nil {
		return fmt.Errorf("projections: %s at seq %d: no key %q", ev.Type, ev.Seq, p.Name)
	}
	k.transit = &TransitSettings{
		Configured: true, Derived: p.Derived, DeletionAllowed: p.DeletionAllowed,
		MinDecryptionVersion: p.MinDecryptionVersion, MinEncryptionVersion: p.MinEncryptionVersion,
	}
	return nil
}

func (e *Enclave) keyDisabled(ev ledger.Event, p ledger.KeyDisabled) error {
	return e.setDisabled(ev, p.Name, p.Version, true)
}

func (e *Enclave) keyEnabled(ev ledger.Event, p ledger.KeyEnabled) error {
	return e.setDisabled(ev, p.Name, p.Version, false)
}

// setDisabled disables or enables a key (version 0) or one version.
func (e *Enclave) setDisabled(ev ledger.Event, name string, version uint32, disabled bool) error {
	e.touch(name)
	k := e.Keys[name]
	if k == nil {
		return fmt.Errorf("projections: %s at seq %d: no key %q", ev.Type, ev.Seq, name)
	}
	if version == 0 {
		k.Disabled = disabled
	} else if v := k.Version(version); v != nil {
		v.Disabled = disabled
	}
	if disabled {
		e.droppedKey(k, version)
	}
	return nil
}

func (e *Enclave) keyDeletionScheduled(ev ledger.Event, p ledger.KeyDeletionScheduled) error {
	e.touch(p.Name)
	if k := e.Keys[p.Name]; k != nil {
		k.pending = &deletion{deadline: p.Deadline, by: ev.Actor}
		e.setPending(p.Name, true)
		e.droppedKey(k, 0)
	}
	return nil
}

func (e *Enclave) keyRestored(_ ledger.Event, p ledger.KeyRestored) error {
	e.touch(p.Name)
	if k := e.Keys[p.Name]; k != nil {
		k.pending = nil
		e.setPending(p.Name, false)
	}
	return nil
}

func (e *Enclave) keyNameReleased(_ ledger.Event, p ledger.KeyNameReleased) error {
	delete(e.Tombstones, p.Name)
	return nil
}

func (e *Enclave) identityCreated(ev ledger.Event, p ledger.IdentityCreated) error {
	policy := ""
	if old := e.Identities[p.Identity]; old != nil {
		policy = old.Policy
	}
	e.Identities[p.Identity] = &Identity{
		Identity: p.Identity, Privilege: p.Privilege, Policy: policy,
		ServiceAccount: p.ServiceAccount, Parent: p.Parent, Tags: p.Tags,
		CreatedAt: ev.Time, CreatedBy: ev.Actor,
	}
	return nil
}

func (e *Enclave) identityDeleted(_ ledger.Event, p ledger.IdentityDeleted) error {
	delete(e.Identities, p.Identity)
	for _, sa := range p.ServiceAccounts {
		delete(e.Identities, sa)
	}
	e.dropTokens(append([]string{p.Identity}, p.ServiceAccounts...))
	return nil
}

func (e *Enclave) policyAssigned(_ ledger.Event, p ledger.PolicyAssigned) error {
	if id := e.Identities[p.Identity]; id != nil {
		id.Policy = p.Policy
	}
	return nil
}

func (e *Enclave) policyCreated(ev ledger.Event, p ledger.PolicyCreated) error {
	// Policies written before command names were checked may hold names
	// in another case ("key:decrypt"): they are enforced by their
	// canonical name; unknown names are kept and match nothing.
	e.Policies[p.Name] = &Policy{Name: p.Name, Allow: wire.CanonicalRules(p.Allow), Deny: wire.CanonicalRules(p.Deny),
		CreatedAt: ev.Time, CreatedBy: ev.Actor}
	return nil
}

func (e *Enclave) policyDeleted(_ ledger.Event, p ledger.PolicyDeleted) error {
	delete(e.Policies, p.Name)
	return nil
}

// droppedKey tells the Projection that version n of k (0: all of them)
// may no longer be used.
func (e *Enclave) droppedKey(k *Key, n uint32) {
	for _, v := range k.versions {
		if n == 0 || v.Version == n {
			e.dropped(v)
		}
	}
}

// dropped tells the Projection that version v (nil: none) may no longer
// be used: it left the state, or it or its key was disabled or scheduled
// for deletion. Its unsealed material is dropped from the key cache.
func (e *Enclave) dropped(v *Version) {
	if v != nil && e.drop != nil {
		e.drop(v)
	}
}
