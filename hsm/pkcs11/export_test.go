package pkcs11

import p11 "github.com/miekg/pkcs11"

// Test hooks: the AES-KWP fallback cannot be reached on SoftHSM2, which
// offers AES-GCM, so tests force it.

// FormatGCM and FormatKWP are the first bytes of the two blob formats.
const (
	FormatGCM = formatGCM
	FormatKWP = formatKWP
)

// OpenKWP is Open, but wraps with AES-KWP.
func OpenKWP(cfg Config) (*HSM, error) { return open(cfg, formatKWP) }

// CreateKeyKWP is CreateKey for a token without AES-GCM.
func CreateKeyKWP(cfg Config) error { return createKey(cfg, formatKWP) }

// KeyAttributes reads the boolean attributes of the configured key, and
// reports whether reading its value failed.
func KeyAttributes(cfg Config) (attrs map[string]bool, valueHidden bool, err error) {
	s, err := openSession(cfg, false)
	if err != nil {
		return nil, false, err
	}
	defer s.mod.release(func(bool) { s.mod.ctx.Logout(s.sh); s.mod.ctx.CloseSession(s.sh) })
	keys, err := findKeys(s.mod.ctx, s.sh, cfg.KeyLabel)
	if err != nil || len(keys) != 1 {
		return nil, false, err
	}
	names := map[uint]string{
		p11.CKA_TOKEN: "token", p11.CKA_PRIVATE: "private", p11.CKA_SENSITIVE: "sensitive",
		p11.CKA_EXTRACTABLE: "extractable", p11.CKA_ENCRYPT: "encrypt", p11.CKA_DECRYPT: "decrypt",
		p11.CKA_WRAP: "wrap", p11.CKA_UNWRAP: "unwrap",
	}
	var tmpl []*p11.Attribute
	for t := range names {
		tmpl = append(tmpl, p11.NewAttribute(t, nil))
	}
	got, err := s.mod.ctx.GetAttributeValue(s.sh, keys[0], tmpl)
	if err != nil {
		return nil, false, err
	}
	attrs = make(map[string]bool)
	for _, a := range got {
		attrs[names[a.Type]] = len(a.Value) == 1 && a.Value[0] != 0
	}
	_, verr := s.mod.ctx.GetAttributeValue(s.sh, keys[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)})
	return attrs, verr != nil, nil
}

// Format returns the format byte Wrap produces.
func (h *HSM) Format() byte { return h.format }

// BreakSessions closes every pooled session behind the pool's back, as a
// token reset would, to check that broken sessions are replaced.
func (h *HSM) BreakSessions() {
	for range PoolSize {
		sh := <-h.pool
		h.ctx.CloseSession(sh)
		h.pool <- sh
	}
}
