package commands

import (
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// configureTransitKey decides ConfigureTransitKey:
// key.transit_configured.v1 with the key's new Transit settings.
func (d *decision) configureTransitKey(e *projections.Enclave, c ConfigureTransitKey) (Decision, error) {
	k := e.Keys[c.Name]
	if k == nil {
		return Decision{}, ErrKeyNotFound
	}
	if t := k.Transit(); t.Configured && t.Derived != c.Derived {
		return Decision{}, refuse(ErrInvalidArgument, "key derivation is chosen when a key is created and cannot change")
	}
	switch {
	case c.MinDecryptionVersion > k.MaxVer:
		return Decision{}, refuse(ErrInvalidArgument, "cannot set min decryption version of %d, latest key version is %d", c.MinDecryptionVersion, k.MaxVer)
	case c.MinEncryptionVersion > k.MaxVer:
		return Decision{}, refuse(ErrInvalidArgument, "cannot set min encryption version of %d, latest key version is %d", c.MinEncryptionVersion, k.MaxVer)
	case c.MinEncryptionVersion != 0 && c.MinEncryptionVersion < c.MinDecryptionVersion:
		return Decision{}, refuse(ErrInvalidArgument, "min encryption version should not be less than min decryption version")
	}
	return d.event(e.Name, ledger.KeySubject(e.Name, c.Name), ledger.TypeKeyTransitConfigured, ledger.KeyTransitConfigured{
		Name: c.Name, Derived: c.Derived, DeletionAllowed: c.DeletionAllowed,
		MinDecryptionVersion: c.MinDecryptionVersion, MinEncryptionVersion: c.MinEncryptionVersion,
	})
}
