package commands

import (
	"slices"

	"github.com/kmsledger/kmsledger/ledger"
)

// createEnclave decides CreateEnclave: enclave.created.v1.
func (d *decision) createEnclave(c CreateEnclave) (Decision, error) {
	if d.s.Enclaves[c.Name] != nil {
		return Decision{}, ErrEnclaveExists
	}
	return d.event("", ledger.EnclaveSubject(c.Name), ledger.TypeEnclaveCreated, ledger.EnclaveCreated{Name: c.Name})
}

// deleteEnclave decides DeleteEnclave: enclave.deleted.v1, erasing every
// sealed key of the enclave.
func (d *decision) deleteEnclave(c DeleteEnclave) (Decision, error) {
	e := d.s.Enclaves[c.Name]
	if e == nil {
		return Decision{}, ErrEnclaveNotFound
	}
	var fps []string
	for _, k := range e.Keys {
		for _, v := range k.Versions() {
			fps = append(fps, v.Fingerprint())
		}
	}
	slices.Sort(fps)
	d.erase = []string{c.Name + ".>"}
	return d.event("", ledger.EnclaveSubject(c.Name), ledger.TypeEnclaveDeleted, ledger.EnclaveDeleted{Name: c.Name, Fingerprints: fps})
}
