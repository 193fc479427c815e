package projections

import (
	"encoding/hex"
	"strconv"
	"strings"
	"unsafe"

	"github.com/kmsledger/kmsledger/ledger"
)

// Version.form bits.
const (
	packedFP      = 1 << iota // fp holds the fingerprint
	packedAttempt             // the reference is AttemptSecretRef(…, hex(attempt))
	packedLegacy              // the reference is SecretRef(…), without an attempt
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
	var rare versionRare
	if len(fp) == 2*len(v.fp) && lowerHex(fp) {
		hex.Decode(v.fp[:], []byte(fp))
		v.form |= packedFP
	} else {
		rare.fingerprint = strings.Clone(fp)
	}
	switch n := refPrefixLen(ref, enclave, name, v.Version); {
	case n > 0 && n == len(ref):
		v.form |= packedLegacy
	case n > 0 && ref[n] == '.' && len(ref)-n-1 == 2*len(v.attempt) && lowerHex(ref[n+1:]):
		hex.Decode(v.attempt[:], []byte(ref[n+1:]))
		v.form |= packedAttempt
	default:
		rare.secretRef = strings.Clone(ref)
	}
	rare.source = src
	if rare != (versionRare{}) {
		v.rare = &rare
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
	switch {
	case v.form&packedAttempt != 0:
		return ledger.AttemptSecretRef(enclave, name, v.Version, hex.EncodeToString(v.attempt[:]))
	case v.form&packedLegacy != 0:
		return ledger.SecretRef(enclave, name, v.Version)
	case v.rare != nil:
		return v.rare.secretRef
	}
	return ""
}

// Source is where an imported version came from, or nil.
func (v *Version) Source() *ledger.ImportSource {
	if v.rare == nil {
		return nil
	}
	return v.rare.source
}

// refPrefixLen is len(ledger.SecretRef(enclave, name, version)) if ref
// starts with it, else 0.
func refPrefixLen(ref, enclave, name string, version uint32) int {
	var num [10]byte
	ver := strconv.AppendUint(num[:0], uint64(version), 10)
	n := len(enclave) + 1 + len(name) + 1 + len(ver)
	if len(ref) < n || ref[:len(enclave)] != enclave || ref[len(enclave)] != '.' {
		return 0
	}
	rest := ref[len(enclave)+1:]
	if rest[:len(name)] != name || rest[len(name)] != '.' || rest[len(name)+1:len(name)+1+len(ver)] != string(ver) {
		return 0
	}
	return n
}

// lowerHex reports whether s is made of lowercase hex digits only, the
// form hex.EncodeToString gives.
func lowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// viewString is b as a string without a copy, for setFacts only: b must
// not change while the string is in use.
func viewString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
