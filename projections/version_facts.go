package projections

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"unsafe"

	"github.com/kmsledger/kmsledger/ledger"
)

// Version.form bits.
const (
	packedFP      = 1 << iota // fp holds the fingerprint
	packedAttempt             // the reference is AttemptSecretRef(…, hex(attempt))
	packedLegacy              // the reference is SecretRef(…), without an attempt
	packedShort               // the reference is AttemptSecretRef(…, base64url(attempt[:8])) (ledger.AttemptOf)
)

// versionRare is what few versions have: an import source, and a
// fingerprint or secret reference of an unusual form. It is never changed
// once set, so copies of a Version share it.
type versionRare struct {
	source      *ledger.ImportSource
	fingerprint string
	secretRef   string
}

// setFacts records the fingerprint, secret reference and import source of
// version v of key name in enclave, packing the digests when they have
// their usual form. It keeps no reference to ref or fp, which may be views
// of a buffer (viewString).
func (v *Version) setFacts(enclave, name, ref, fp string, src *ledger.ImportSource) {
	v.form, v.rare = 0, nil
	var rareFP, rareRef string
	if ledger.DecodeLowerHex(v.fp[:], fp) {
		v.form |= packedFP
	} else {
		rareFP = strings.Clone(fp)
	}
	// The usual reference is SecretRef(enclave, name, version), then
	// "." + hex(attempt); its prefix is built on the stack (a million of
	// them at each start), and rare is allocated only when it holds
	// something.
	var buf [128]byte
	prefix := ledger.AppendSecretRef(buf[:0], enclave, name, v.Version)
	attempt, cut := "", false
	if len(ref) >= len(prefix) && ref[:len(prefix)] == string(prefix) {
		attempt, cut = ref[len(prefix):], true
	}
	switch {
	case cut && attempt == "":
		v.form |= packedLegacy
	case cut && attempt[0] == '.' && ledger.DecodeLowerHex(v.attempt[:], attempt[1:]):
		v.form |= packedAttempt
	case cut && attempt[0] == '.' && decodeShortAttempt(v.attempt[:8], attempt[1:]):
		v.form |= packedShort
	default:
		rareRef = strings.Clone(ref)
	}
	if rareFP != "" || rareRef != "" || src != nil {
		v.rare = &versionRare{source: src, fingerprint: rareFP, secretRef: rareRef}
	}
}

// Fingerprint is the version's fingerprint as its event recorded it.
func (v *Version) Fingerprint() string {
	if v.form&packedFP != 0 {
		return hex.EncodeToString(v.fp[:])
	}
	if v.rare != nil {
		return v.rare.fingerprint
	}
	return ""
}

// SecretRef is the reference of the version's sealed material in SECRETS
// as its event recorded it; enclave and name are its key's.
func (v *Version) SecretRef(enclave, name string) string {
	if v.form&(packedAttempt|packedLegacy|packedShort) == 0 && v.rare != nil {
		return v.rare.secretRef // as recorded: no copy
	}
	return string(v.AppendSecretRef(make([]byte, 0, len(enclave)+len(name)+46), enclave, name))
}

// AppendSecretRef appends SecretRef(enclave, name) to b without building
// the string: a scan of every version (the reconcile at start) compares
// a million references with no allocation.
func (v *Version) AppendSecretRef(b []byte, enclave, name string) []byte {
	switch {
	case v.form&(packedAttempt|packedLegacy|packedShort) != 0:
		b = ledger.AppendSecretRef(b, enclave, name, v.Version)
		switch {
		case v.form&packedAttempt != 0:
			b = hex.AppendEncode(append(b, '.'), v.attempt[:]) // AttemptSecretRef's ".<attempt>"
		case v.form&packedShort != 0:
			b = base64.RawURLEncoding.AppendEncode(append(b, '.'), v.attempt[:8])
		}
		return b
	case v.rare != nil:
		return append(b, v.rare.secretRef...)
	}
	return b
}

// Source is where an imported version came from, or nil.
func (v *Version) Source() *ledger.ImportSource {
	if v.rare == nil {
		return nil
	}
	return v.rare.source
}

// decodeShortAttempt decodes s into dst (8 bytes) if s is exactly their
// unpadded base64url, 11 characters, the form ledger.AttemptOf gives
// (otherwise dst may be partly written). It allocates nothing: a start
// packs a million of them.
func decodeShortAttempt(dst []byte, s string) bool {
	var in, out [11]byte
	if len(dst) != 8 || len(s) != len(in) {
		return false
	}
	copy(in[:], s)
	if n, err := base64.RawURLEncoding.Decode(dst, in[:]); err != nil || n != len(dst) {
		return false
	}
	base64.RawURLEncoding.Encode(out[:], dst)
	return string(out[:]) == s
}

// viewString is b as a string without a copy, for setFacts only: b must
// not change while the string is in use.
func viewString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
