package api

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
	authz "github.com/kmsledger/kmsledger/projections/access"
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
	info.kms = true
	for _, c := range calls {
		if c.cmd.Scope().InEnclave() { // key, policy and identity commands
			info.scoped = true
			continue
		}
		name := enclaveNamed(c.msg)
		switch {
		case name == "" || (info.named != "" && name != info.named):
			info.namedMany = true
		default:
			info.named = name
		}
	}
}

// enclaveNamed is the enclave an enclave command's message names ("" for
// listings and cluster commands).
func enclaveNamed(m message) string {
	switch m := m.(type) {
	case *wire.CreateEnclaveRequest:
		return m.Name
	case *wire.DeleteEnclaveRequest:
		return m.Name
	case *wire.EnclaveStatusRequest:
		return m.Name
	}
	return ""
}

// isKMSWithoutEnclave reports whether r went to the kms endpoint without
// an enclave in its path (POST /v1/kms, or a path under /v1/kms/ that
// names none), where key, policy and identity commands act in
// DefaultEnclave.
func isKMSWithoutEnclave(r *http.Request) bool {
	p := r.URL.Path
	return r.Method == http.MethodPost && r.Pattern != "" && r.PathValue("enclave") == "" &&
		(p == "/v1/kms" || strings.HasPrefix(p, "/v1/kms/"))
}

// kmsAuditEnclave is the enclave a kms request without an enclave in its
// path acted in, for its audit record: DefaultEnclave when it holds a
// key, policy or identity command (or when it failed before its frames
// were read: that is where MinIO with an empty MINIO_KMS_ENCLAVE acts);
// for enclave commands alone, sent by root, the one enclave they name;
// otherwise none (only root reads such records).
func (s *Server) kmsAuditEnclave(identity string, info *auditInfo) string {
	if !info.kms || info.scoped {
		return DefaultEnclave
	}
	if info.namedMany || info.named == "" || identity == "" {
		return ""
	}
	root := false
	s.proj.View(func(st *projections.State) { root = authz.IsRoot(st, identity) })
	if !root {
		return ""
	}
	return info.named
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
