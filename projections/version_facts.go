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
	if decodeLowerHex(v.fp[:], fp) {
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
	case cut && attempt[0] == '.' && decodeLowerHex(v.attempt[:], attempt[1:]):
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

// decodeLowerHex decodes s into dst if s is exactly 2*len(dst) lowercase
// hex digits, the form hex.EncodeToString gives; otherwise it reports
// false (dst may then be partly written).
func decodeLowerHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, lo := lowerHexValue[s[2*i]], lowerHexValue[s[2*i+1]]
		if hi|lo > 0xf {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

// lowerHexValue is the value of each lowercase hex digit and 0xff for
// every other byte. A table, not a comparison per digit: the digits of
// fingerprints are random, and the branches of a comparison were
// mispredicted often enough to make this decode a tenth of a snapshot's
// read (a million fingerprints at each start).
var lowerHexValue = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = byte(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		default:
			t[c] = 0xff
		}
	}
	return t
}()

// viewString is b as a string without a copy, for setFacts only: b must
// not change while the string is in use.
func viewString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
