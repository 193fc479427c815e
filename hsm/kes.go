// Key versions imported from MinIO KES, and KES's ciphertext envelopes.
//
// Summary: a KES key is 32 bytes of master key K plus, since 2024, a
// 32-byte HMAC key that /v1/key/hmac uses (MinIO may derive its root
// credentials from it). ImportVersionKES seals both, so Key.MAC keeps
// answering as KES did. Every KES ciphertext is sealed = AEAD(subkey(K, IV),
// nonce, plaintext, AD = context) with a random 16-byte IV and 12-byte nonce
// (legacy.go); only the envelope changed over the years. Before the raw
// format (legacy.go), KES wrote a JSON or msgpack envelope whose label names
// the cipher. The label, not the key's type, picks the cipher: KES ≤ v0.22
// chose it per ciphertext from the CPU. The key id inside the envelope is
// ignored. If a parsed envelope does not authenticate, the bytes are still
// tried as raw (a raw ciphertext starts with '{' or 0x95 by chance).
//
// JSON (KES ≤ v0.19.1; base64 is standard and padded; "id" since v0.16):
//
//	{"aead":LABEL,"id":hex16,"iv":b64(16 B),"nonce":b64(12 B),"bytes":b64(sealed)}
//	LABEL: "AES-256-GCM-HMAC-SHA-256" | "ChaCha20Poly1305" | "AES-256-GCM" (≤ v0.6.0)
//
// msgpack (v0.19.2 – Jan 2024), an array of exactly 5 items, nothing after:
//
//	+------+-----------+--------+-----------+--------------+---------------+
//	| 0x95 | str LABEL | str id | bin IV 16 | bin nonce 12 | bin sealed    |
//	+------+-----------+--------+-----------+--------------+---------------+
//	str: a0–bf (fixstr) | d9 u8 | da u16BE | db u32BE, then the bytes
//	bin: c4 u8 | c5 u16BE | c6 u32BE, then the bytes
//	LABEL: "AES256-GCM_SHA256" | "XCHACHA20-POLY1305" | "AES256" | "ChaCha20"
//
// Subkeys: AES labels and ChaCha labels as in legacy.go (HMAC-SHA256(K, IV),
// HChaCha20(K, IV)). "AES-256-GCM" (KES v0.1.0–v0.6.0), with E = AES-256
// under K and LE32(i) a 4-byte little-endian counter:
//
//	subkey = E(LE32(0)‖IV[0:12]) ⊕ E(LE32(1)‖IV[4:16]) ‖ E(LE32(2)‖IV[0:12]) ⊕ E(LE32(3)‖IV[4:16])
//
// References: KES's ciphertext and stored-key formats (vectors in
// testdata/kes/); msgpack spec (str/bin families);
// RFC 2104 (HMAC); RFC 8439 (ChaCha20-Poly1305); NIST SP 800-38D (GCM).

package hsm

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrInvalidHMACKey is returned by ImportVersionKES for an HMAC key that is
// not exactly 32 bytes long.
var ErrInvalidHMACKey = errors.New("hsm: HMAC key must be exactly 32 bytes")

// ImportVersionKES is ImportVersion for a key imported from KES: it also
// seals hmacKey (32 bytes, or nil for KES keys that have none), which
// Key.MAC then uses. The fingerprint covers the material only, as for
// ImportVersion. raw and hmacKey are not modified or retained.
func (r *REK) ImportVersionKES(kt KeyType, raw, hmacKey []byte, aad []byte) (sealed []byte, fingerprint string, err error) {
	if hmacKey != nil && len(hmacKey) != macKeyLen {
		return nil, "", fmt.Errorf("%w (got %d)", ErrInvalidHMACKey, len(hmacKey))
	}
	return r.importVersion(kt, raw, hmacKey, aad)
}

// kesCipher is the cipher a KES envelope label names.
type kesCipher int

const (
	kesAES    kesCipher = iota + 1 // AES-256-GCM, subkey HMAC-SHA256(K, IV).
	kesChaCha                      // ChaCha20-Poly1305, subkey HChaCha20(K, IV).
	kesAESOld                      // AES-256-GCM, subkey from the ≤ v0.6.0 AES KDF.
)

// kesEnvelope is a parsed JSON or msgpack KES ciphertext.
type kesEnvelope struct {
	cipher            kesCipher
	iv, nonce, sealed []byte
}

var (
	kesJSONLabels    = map[string]kesCipher{"AES-256-GCM-HMAC-SHA-256": kesAES, "ChaCha20Poly1305": kesChaCha, "AES-256-GCM": kesAESOld}
	kesMsgpackLabels = map[string]kesCipher{"AES256-GCM_SHA256": kesAES, "AES256": kesAES, "XCHACHA20-POLY1305": kesChaCha, "ChaCha20": kesChaCha}
)

// decryptKES opens a KES JSON, msgpack or raw ciphertext. ok is false on
// any failure.
func (k *Key) decryptKES(ct, ad []byte) (plaintext []byte, ok bool) {
	var env kesEnvelope
	var parsed bool
	switch {
	case len(ct) > 0 && ct[0] == '{':
		env, parsed = parseKESJSON(ct)
	case len(ct) > 0 && ct[0] == 0x95:
		env, parsed = parseKESMsgpack(ct)
	}
	if parsed {
		if pt, ok := k.openKES(env, ad); ok {
			return pt, true
		}
	}
	return k.decryptLegacy(ct, ad)
}

func (k *Key) openKES(env kesEnvelope, ad []byte) ([]byte, bool) {
	var (
		a   cipher.AEAD
		err error
	)
	switch env.cipher {
	case kesAES:
		a, err = legacyAEAD(AES256, k.material[:], env.iv)
	case kesChaCha:
		a, err = legacyAEAD(ChaCha20, k.material[:], env.iv)
	case kesAESOld:
		a, err = oldKESAEAD(k.material[:], env.iv)
	default:
		return nil, false
	}
	if err != nil {
		return nil, false
	}
	pt, err := a.Open(nil, env.nonce, env.sealed, ad)
	if err != nil {
		return nil, false
	}
	return pt, true
}

// oldKESAEAD derives the KES ≤ v0.6.0 "AES-256-GCM" subkey (see the top of
// the file) and returns AES-256-GCM under it.
func oldKESAEAD(material, iv []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(material)
	if err != nil {
		return nil, err
	}
	var in, x, y [aes.BlockSize]byte
	subkey := make([]byte, 0, materialLen)
	defer clear(subkey)
	for i := uint32(0); i < 4; i += 2 {
		binary.LittleEndian.PutUint32(in[:4], i)
		copy(in[4:], iv[0:12])
		b.Encrypt(x[:], in[:])
		binary.LittleEndian.PutUint32(in[:4], i+1)
		copy(in[4:], iv[4:16])
		b.Encrypt(y[:], in[:])
		for j := range x {
			x[j] ^= y[j]
		}
		subkey = append(subkey, x[:]...)
	}
	clear(x[:])
	clear(y[:])
	sb, err := aes.NewCipher(subkey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(sb)
}

// parseKESJSON parses the JSON envelope; ok is false if ct is not one.
func parseKESJSON(ct []byte) (env kesEnvelope, ok bool) {
	var j struct {
		AEAD  string `json:"aead"`
		IV    []byte `json:"iv"`
		Nonce []byte `json:"nonce"`
		Bytes []byte `json:"bytes"`
	}
	if json.Unmarshal(ct, &j) != nil {
		return kesEnvelope{}, false
	}
	c, known := kesJSONLabels[j.AEAD]
	if !known || len(j.IV) != legacyIVLen || len(j.Nonce) != legacyNonceLen {
		return kesEnvelope{}, false
	}
	return kesEnvelope{cipher: c, iv: j.IV, nonce: j.Nonce, sealed: j.Bytes}, true
}

// parseKESMsgpack parses the msgpack envelope; ok is false if ct is not one.
func parseKESMsgpack(ct []byte) (env kesEnvelope, ok bool) {
	if len(ct) == 0 || ct[0] != 0x95 {
		return kesEnvelope{}, false
	}
	rest := ct[1:]
	label, ok1 := msgpackItem(&rest, false)
	_, ok2 := msgpackItem(&rest, false) // Key id: not needed to decrypt.
	iv, ok3 := msgpackItem(&rest, true)
	nonce, ok4 := msgpackItem(&rest, true)
	sealed, ok5 := msgpackItem(&rest, true)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || len(rest) != 0 {
		return kesEnvelope{}, false
	}
	c, known := kesMsgpackLabels[string(label)]
	if !known || len(iv) != legacyIVLen || len(nonce) != legacyNonceLen {
		return kesEnvelope{}, false
	}
	return kesEnvelope{cipher: c, iv: iv, nonce: nonce, sealed: sealed}, true
}

// msgpackItem consumes one str (bin false) or bin (bin true) item from *b
// and returns its bytes.
func msgpackItem(b *[]byte, bin bool) ([]byte, bool) {
	p := *b
	if len(p) == 0 {
		return nil, false
	}
	var hdr, size int
	switch t := p[0]; {
	case !bin && t >= 0xa0 && t <= 0xbf:
		hdr, size = 1, int(t&0x1f)
	case (!bin && t == 0xd9) || (bin && t == 0xc4):
		hdr = 2
	case (!bin && t == 0xda) || (bin && t == 0xc5):
		hdr = 3
	case (!bin && t == 0xdb) || (bin && t == 0xc6):
		hdr = 5
	default:
		return nil, false
	}
	if len(p) < hdr {
		return nil, false
	}
	var n uint64
	switch hdr {
	case 1:
		n = uint64(size)
	case 2:
		n = uint64(p[1])
	case 3:
		n = uint64(binary.BigEndian.Uint16(p[1:3]))
	case 5:
		n = uint64(binary.BigEndian.Uint32(p[1:5]))
	}
	if n > uint64(len(p)-hdr) {
		return nil, false
	}
	end := hdr + int(n)
	*b = p[end:]
	return p[hdr:end:end], true
}
