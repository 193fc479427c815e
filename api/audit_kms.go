package api

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
)

// auditCalls records the decoded frames of a kms request, before they are
// authorised, so that denied requests show what was asked.
func auditCalls(w http.ResponseWriter, calls []call) {
	info := auditFrom(w)
	if info == nil {
		return
	}
	n := min(len(calls), maxAuditItems)
	info.items, info.omitted = make([]ledger.AuditItem, n), len(calls)-n
	for i, c := range calls[:n] {
		info.items[i] = auditItem(c)
	}
}

// auditReply records the key version a frame actually used.
func auditReply(w http.ResponseWriter, i int, m message) {
	info := auditFrom(w)
	if info == nil || i >= len(info.items) {
		return
	}
	switch r := m.(type) {
	case *wire.EncryptResponse:
		info.items[i].Version = r.Version
	case *wire.GenerateKeyResponse:
		info.items[i].Version = r.Version
	case *wire.MACResponse:
		info.items[i].Version = r.Version
	case *wire.KeyStatusResponse:
		info.items[i].Version = r.Version
	}
}

// auditItem describes one frame: its command, its argument (a key name
// for KEY:* commands; the policy, identity or enclave otherwise), the
// version asked for (for Decrypt, the one the ciphertext names) and the
// SHA-256 of the associated data.
func auditItem(c call) ledger.AuditItem {
	it := ledger.AuditItem{Command: c.cmd.String(), Key: c.resource}
	switch m := c.msg.(type) {
	case *wire.EncryptRequest:
		it.Version, it.ADSHA256 = m.Version, adDigest(m.AssociatedData)
	case *wire.DecryptRequest:
		it.Version, it.ADSHA256 = m.Version, adDigest(m.AssociatedData)
		if v, ok := hsm.CiphertextVersion(m.Ciphertext); ok {
			it.Version = v
		}
	case *wire.GenerateKeyRequest:
		it.Version, it.ADSHA256 = m.Version, adDigest(m.AssociatedData)
	case *wire.MACRequest:
		it.Version = m.Version
	case *wire.KeyStatusRequest:
		it.Version = m.Version
	case *wire.DeleteKeyRequest:
		it.Version = m.Version
	}
	return it
}

// adDigest is the hex SHA-256 of associated data; "" when there is none.
func adDigest(ad []byte) string {
	if len(ad) == 0 {
		return ""
	}
	d := sha256.Sum256(ad)
	return hex.EncodeToString(d[:])
}
