package access

import (
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// AuditorTag and AuditorRole mark a read-only auditor: a User identity
// with the tag AuditorTag=AuditorRole, created by the root identity or by
// an Admin of the enclave, may read the ledger's history of its enclave
// (the time-travel and audit queries). It gets no key operation from the
// tag; its policy (if any) alone decides those, as for every User. (The
// tag set by anyone else, e.g. a User whose policy allows
// IDENTITY:CREATE, grants nothing.)
//
// Why a tag: the kms privilege enum (Admin, User) is part of the wire
// contract and kms-go rejects values it does not know, so a third
// privilege would break GetIdentity and ListIdentities for kms-go
// clients; and a new policy command would make kms-go's GetPolicy reject
// the policy. A tag is plain data that every client already round-trips.
const (
	AuditorTag  = "kmsledger.role"
	AuditorRole = "auditor"
)

// LedgerRead is what a caller may read of the ledger's history.
type LedgerRead uint8

// The answers of ReadLedger.
const (
	LedgerDenied      LedgerRead = iota // nothing
	LedgerNameEnclave                   // nothing until it names an enclave: it is an identity of some enclave
	LedgerEnclave                       // the named enclave's history
	LedgerAll                           // everything the caller asks for (the root identity)
)

// String names r ("denied", "name-enclave", "enclave", "all").
func (r LedgerRead) String() string {
	switch r {
	case LedgerNameEnclave:
		return "name-enclave"
	case LedgerEnclave:
		return "enclave"
	case LedgerAll:
		return "all"
	}
	return "denied"
}

// ReadLedger decides what identity may read of enclave's history ("" =
// every enclave and the system events). The root identity reads
// everything. Anyone else must name an enclave and be, in st, an Admin or
// an auditor of it, or a service account of one of those (MayReadLedger);
// without an enclave, an identity of some enclave is told to name one
// (LedgerNameEnclave) and anybody else is refused.
func ReadLedger(st *projections.State, identity, enclave string) LedgerRead {
	if identity == "" {
		return LedgerDenied
	}
	if identity == st.RootIdentity {
		return LedgerAll
	}
	if enclave == "" {
		for _, e := range st.Enclaves {
			if e.Identities[identity] != nil {
				return LedgerNameEnclave
			}
		}
		return LedgerDenied
	}
	e := st.Enclaves[enclave]
	if e == nil || !MayReadLedger(st, e, identity) {
		return LedgerDenied
	}
	return LedgerEnclave
}

// MayReadLedger reports whether identity is an Admin or an auditor of e,
// or a service account of one (or of root).
func MayReadLedger(st *projections.State, e *projections.Enclave, identity string) bool {
	x, viaRoot := rights(st, e, e.Identities[identity])
	return viaRoot || (x != nil && (x.Privilege == ledger.PrivilegeAdmin || IsAuditor(st, e, x)))
}

// IsAuditor reports whether x carries the auditor tag and was created by
// someone who may create Admins (root, or an Admin of e that is not a
// service account): a User allowed IDENTITY:CREATE can set any tag, and
// must not be able to mint auditors. An auditor whose creator has since
// lost the Admin privilege must be created again by a current Admin.
func IsAuditor(st *projections.State, e *projections.Enclave, x *projections.Identity) bool {
	if x.Tags[AuditorTag] != AuditorRole || x.Privilege != ledger.PrivilegeUser {
		return false
	}
	if x.CreatedBy == st.RootIdentity {
		return true
	}
	c := e.Identities[x.CreatedBy]
	return c != nil && !c.ServiceAccount && c.Privilege == ledger.PrivilegeAdmin
}
