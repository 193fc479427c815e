package hsm_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/hsm/softkey"
)

// kesVectorsDir holds real KES key stores and ciphertexts (README.md there).
const kesVectorsDir = "../testdata/kes"

type kesAllVector struct {
	Producer      string `json:"producer"`
	KeyFile       string `json:"key_file"`
	ContextB64    string `json:"context_b64"`
	PlaintextHex  string `json:"plaintext_hex"`
	CiphertextB64 string `json:"ciphertext_b64"`
	Format        string `json:"format"`
}

// kesKeyFile reads a KES fs key file with a parser written for this test
// (independent of package migrate): JSON {"bytes","algorithm"} or base64
// protobuf KeyVersion in the fixed layout of the vector files.
func kesKeyFile(t testing.TB, file string) (kt hsm.KeyType, material, hmacKey []byte, algorithm string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(kesVectorsDir, file))
	if err != nil {
		t.Fatal(err)
	}
	if b[0] == '{' {
		var j struct {
			Bytes     []byte `json:"bytes"`
			Algorithm string `json:"algorithm"`
		}
		if err := json.Unmarshal(b, &j); err != nil {
			t.Fatal(err)
		}
		kt = hsm.AES256
		if j.Algorithm == "ChaCha20" || j.Algorithm == "XCHACHA20-POLY1305" {
			kt = hsm.ChaCha20
		}
		return kt, j.Bytes, nil, j.Algorithm
	}
	pb, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil {
		t.Fatal(err)
	}
	// Every vector file starts 0a 24 {0a 20 key(32) 10 type} 12 24 {0a 20 hmac(32) 10 01}.
	if len(pb) < 76 || !bytes.Equal(pb[:4], []byte{0x0a, 0x24, 0x0a, 0x20}) || pb[36] != 0x10 || !bytes.Equal(pb[38:42], []byte{0x12, 0x24, 0x0a, 0x20}) {
		t.Fatalf("%s: unexpected protobuf layout", file)
	}
	kt = map[byte]hsm.KeyType{1: hsm.AES256, 2: hsm.ChaCha20}[pb[37]]
	return kt, pb[4:36], pb[42:74], string(kt)
}

// importKES imports a key with ImportVersionKES and opens it again.
func importKES(t testing.TB, rek *hsm.REK, kt hsm.KeyType, material, hmacKey []byte, name string) *hsm.Key {
	t.Helper()
	aad := hsm.VersionAAD("kes", name, 1)
	sealed, fp, err := rek.ImportVersionKES(kt, material, hmacKey, aad)
	if err != nil {
		t.Fatalf("ImportVersionKES err = %v", err)
	}
	k, err := rek.OpenVersion(sealed, aad, 1)
	if err != nil {
		t.Fatalf("OpenVersion err = %v", err)
	}
	if k.Fingerprint() != fp {
		t.Fatalf("Fingerprint = %s, ImportVersionKES said %s", k.Fingerprint(), fp)
	}
	return k
}

func loadKESVectors(t testing.TB) []kesAllVector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(kesVectorsDir, "all-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []kesAllVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func decodeVector(t testing.TB, v kesAllVector) (ad, pt, ct []byte) {
	t.Helper()
	ad, err1 := base64.StdEncoding.DecodeString(v.ContextB64)
	pt, err2 := hex.DecodeString(v.PlaintextHex)
	ct, err3 := base64.StdEncoding.DecodeString(v.CiphertextB64)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	return ad, pt, ct
}

// TestDecryptKESAllVectors decrypts every real KES ciphertext (raw, JSON,
// msgpack) with the key from its key file, as imported by ImportVersionKES,
// and checks that tampering fails with ErrDecrypt.
func TestDecryptKESAllVectors(t *testing.T) {
	t.Parallel()
	vs := loadKESVectors(t)
	// The shared copy of the vectors holds 28 (the README's 46 count
	// includes legacy runs that are not in this copy); all must pass.
	if len(vs) != 28 {
		t.Fatalf("all-vectors.json has %d vectors, want 28", len(vs))
	}
	rek := newREK(t)
	keys := map[string]*hsm.Key{}
	formats := map[string]int{}
	chachaLabelNoAlgorithm := 0
	for i, v := range vs {
		k, ok := keys[v.KeyFile]
		kt, material, hmacKey, alg := kesKeyFile(t, v.KeyFile)
		if !ok {
			k = importKES(t, rek, kt, material, hmacKey, filepath.Base(v.KeyFile))
			keys[v.KeyFile] = k
		}
		ad, want, ct := decodeVector(t, v)
		formats[v.Format]++
		if v.Format != "raw" && alg == "" && (bytes.Contains(ct, []byte("ChaCha20Poly1305")) || bytes.Contains(ct, []byte("XCHACHA20-POLY1305"))) {
			chachaLabelNoAlgorithm++ // Cipher from the label: the key type says AES256.
		}
		got, err := k.Decrypt(ct, ad)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("vector %d (%s, %s, %s): Decrypt = %x, %v, want %x", i, v.Producer, v.KeyFile, v.Format, got, err, want)
			continue
		}
		wantDecryptErr(t, k, ct, append(bytes.Clone(ad), 'x'), "KES vector with another context")
		wantDecryptErr(t, k, ct[:len(ct)-1], ad, "truncated KES vector")
		other := keys["current/fs-keystore/imported-aes"]
		if other != nil && v.KeyFile != "current/fs-keystore/imported-aes" && !bytes.Equal(material, material0to31()) {
			wantDecryptErr(t, other, ct, ad, "KES vector with another key")
		}
		for bit := range len(ct) * 8 {
			bad := bytes.Clone(ct)
			bad[bit/8] ^= 1 << (bit % 8)
			pt, err := k.Decrypt(bad, ad)
			switch {
			case err == nil && !bytes.Equal(pt, want):
				t.Fatalf("vector %d with bit %d flipped decrypts to another plaintext", i, bit)
			case err == nil && v.Format == "raw":
				t.Fatalf("vector %d (raw) with bit %d flipped still decrypts", i, bit)
			case err != nil && (!errors.Is(err, hsm.ErrDecrypt) || pt != nil):
				t.Fatalf("vector %d with bit %d flipped: err = %v, want ErrDecrypt", i, bit, err)
			}
		}
	}
	if formats["raw"] != 10 || formats["json"] != 6 || formats["msgpack"] != 12 || chachaLabelNoAlgorithm != 3 {
		t.Errorf("formats %v, ChaCha-labelled vectors under keys without algorithm %d, want raw 10, json 6, msgpack 12, 3", formats, chachaLabelNoAlgorithm)
	}
}

// TestKESEnvelopeTampered changes each bit of the authenticated fields of
// the JSON and msgpack vectors (IV, nonce, sealed bytes) and the label;
// envelope bytes that do not reach the AEAD (key id, JSON spelling) are
// covered by the "same plaintext or ErrDecrypt" rule above.
func TestKESEnvelopeTampered(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	for i, v := range loadKESVectors(t) {
		if v.Format == "raw" {
			continue
		}
		kt, material, hmacKey, _ := kesKeyFile(t, v.KeyFile)
		k := importKES(t, rek, kt, material, hmacKey, "k")
		ad, _, ct := decodeVector(t, v)
		env := parseEnvelopeForTest(t, v.Format, ct)
		for f, field := range [][]byte{env.iv, env.nonce, env.sealed} {
			for bit := range len(field) * 8 {
				field[bit/8] ^= 1 << (bit % 8)
				wantDecryptErr(t, k, env.encode(v.Format), ad, "KES envelope with a flipped field bit")
				field[bit/8] ^= 1 << (bit % 8)
				if bit > 64 && f == 2 {
					break // The first 8 bytes of the sealed part are enough.
				}
			}
		}
		swapped := env
		swapped.label = map[string]string{
			"AES-256-GCM-HMAC-SHA-256": "ChaCha20Poly1305", "ChaCha20Poly1305": "AES-256-GCM-HMAC-SHA-256",
			"AES256": "ChaCha20", "ChaCha20": "AES256", "AES256-GCM_SHA256": "XCHACHA20-POLY1305", "XCHACHA20-POLY1305": "AES256-GCM_SHA256",
		}[env.label]
		wantDecryptErr(t, k, swapped.encode(v.Format), ad, "KES envelope with the other cipher's label")
		if _, err := k.Decrypt(env.encode(v.Format), ad); err != nil {
			t.Errorf("vector %d re-encoded by the test: Decrypt err = %v (test encoder broken)", i, err)
		}
	}
}

// testEnvelope is a KES JSON/msgpack ciphertext as the test builds it.
type testEnvelope struct {
	label, id         string
	iv, nonce, sealed []byte
	wide              bool // msgpack: use str32/bin32 headers instead of the shortest.
}

func parseEnvelopeForTest(t testing.TB, format string, ct []byte) testEnvelope {
	t.Helper()
	if format == "json" {
		var j struct {
			AEAD, ID         string
			IV, Nonce, Bytes []byte
		}
		if err := json.Unmarshal(ct, &j); err != nil {
			t.Fatal(err)
		}
		return testEnvelope{label: j.AEAD, id: j.ID, iv: j.IV, nonce: j.Nonce, sealed: j.Bytes}
	}
	// The vectors' msgpack: fixstr label, str8 id, bin8 iv, bin8 nonce, bin8 sealed.
	p := ct[1:]
	item := func(hdr int) []byte {
		n := int(p[hdr-1])
		if hdr == 1 {
			n = int(p[0] & 0x1f)
		}
		v := bytes.Clone(p[hdr : hdr+n])
		p = p[hdr+n:]
		return v
	}
	e := testEnvelope{label: string(item(1)), id: string(item(2)), iv: item(2), nonce: item(2), sealed: item(2)}
	if len(p) != 0 {
		t.Fatalf("msgpack vector has %d trailing bytes", len(p))
	}
	return e
}

func (e testEnvelope) encode(format string) []byte {
	if format == "json" {
		b, _ := json.Marshal(map[string]any{"aead": e.label, "id": e.id, "iv": e.iv, "nonce": e.nonce, "bytes": e.sealed})
		return b
	}
	item := func(b []byte, data []byte, str bool) []byte {
		codes := [3]byte{0xc4, 0xc5, 0xc6} // bin8, bin16, bin32
		if str {
			codes = [3]byte{0xd9, 0xda, 0xdb} // str8, str16, str32
		}
		switch n := len(data); {
		case str && n < 32 && !e.wide:
			b = append(b, 0xa0|byte(n))
		case n < 256 && !e.wide:
			b = append(b, codes[0], byte(n))
		case n < 65536 && !e.wide:
			b = binary.BigEndian.AppendUint16(append(b, codes[1]), uint16(n))
		default:
			b = binary.BigEndian.AppendUint32(append(b, codes[2]), uint32(n))
		}
		return append(b, data...)
	}
	b := []byte{0x95}
	b = item(b, []byte(e.label), true)
	b = item(b, []byte(e.id), true)
	b = item(b, e.iv, false)
	b = item(b, e.nonce, false)
	return item(b, e.sealed, false)
}

// kesSeal encrypts like KES: raw layout from legacy_test.go's minioSealWith,
// split into the envelope fields.
func kesSeal(t *testing.T, kt hsm.KeyType, label string, material, pt, ad []byte) testEnvelope {
	t.Helper()
	raw := minioSeal(t, kt, material, pt, ad)
	n := len(raw) - 28
	return testEnvelope{label: label, id: "630dcd2966c4336691125448bbb25b4f", sealed: raw[:n], iv: raw[n : n+16], nonce: raw[n+16:]}
}

// TestDecryptKESEnvelopes covers what the real vectors do not: every label,
// the cipher taken from the label for both key types, long str/bin length
// forms, the KES ≤ v0.6.0 "AES-256-GCM" KDF, and malformed envelopes.
func TestDecryptKESEnvelopes(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	m := material0to31()
	keys := []*hsm.Key{importKES(t, rek, hsm.AES256, m, nil, "a"), importKES(t, rek, hsm.ChaCha20, m, nil, "c")}
	ad := []byte(`{"bucket":"bucket/object"}`)
	pts := [][]byte{nil, []byte("x"), bytes.Repeat([]byte{7}, 300), bytes.Repeat([]byte{9}, 70000)}
	for _, tc := range []struct {
		format, label string
		kt            hsm.KeyType
	}{
		{"json", "AES-256-GCM-HMAC-SHA-256", hsm.AES256}, {"json", "ChaCha20Poly1305", hsm.ChaCha20},
		{"msgpack", "AES256-GCM_SHA256", hsm.AES256}, {"msgpack", "AES256", hsm.AES256},
		{"msgpack", "XCHACHA20-POLY1305", hsm.ChaCha20}, {"msgpack", "ChaCha20", hsm.ChaCha20},
	} {
		for _, pt := range pts {
			for _, wide := range []bool{false, true} {
				env := kesSeal(t, tc.kt, tc.label, m, pt, ad)
				env.wide = wide
				ct := env.encode(tc.format)
				for _, k := range keys {
					got, err := k.Decrypt(ct, ad)
					if err != nil || !bytes.Equal(got, pt) {
						t.Errorf("%s %s (%d bytes, wide %v) under a %s key: err = %v", tc.format, tc.label, len(pt), wide, k.Type(), err)
					}
				}
			}
		}
	}
	old := oldKESSeal(t, m, []byte("from KES v0.5"), ad)
	for _, k := range keys {
		if got, err := k.Decrypt(old.encode("json"), ad); err != nil || string(got) != "from KES v0.5" {
			t.Errorf("JSON AES-256-GCM (old KDF) under a %s key: %q, %v", k.Type(), got, err)
		}
	}

	good := kesSeal(t, hsm.AES256, "AES256", m, []byte("p"), ad)
	goodJSON := good
	goodJSON.label = "AES-256-GCM-HMAC-SHA-256"
	bad := map[string][]byte{
		"msgpack trailing byte": append(good.encode("msgpack"), 0),
		"msgpack 4 items":       append([]byte{0x94}, good.encode("msgpack")[1:]...),
		"msgpack unknown label": with(good, func(e *testEnvelope) { e.label = "AES-256-GCM-HMAC-SHA-256" }).encode("msgpack"),
		"msgpack iv 15 bytes":   with(good, func(e *testEnvelope) { e.iv = e.iv[:15] }).encode("msgpack"),
		"msgpack nonce 13":      with(good, func(e *testEnvelope) { e.nonce = append(e.nonce, 0) }).encode("msgpack"),
		"msgpack truncated":     good.encode("msgpack")[:40],
		"msgpack huge length":   {0x95, 0xdb, 0xff, 0xff, 0xff, 0xff},
		"json unknown label":    with(goodJSON, func(e *testEnvelope) { e.label = "AES256" }).encode("json"),
		"json iv 17 bytes":      with(goodJSON, func(e *testEnvelope) { e.iv = append(e.iv, 0) }).encode("json"),
		"json not an object":    []byte(`{"aead":`),
		"empty":                 {},
	}
	for what, ct := range bad {
		for _, k := range keys {
			wantDecryptErr(t, k, ct, ad, what)
		}
	}
}

func with(e testEnvelope, f func(*testEnvelope)) testEnvelope {
	e.iv, e.nonce, e.sealed = bytes.Clone(e.iv), bytes.Clone(e.nonce), bytes.Clone(e.sealed)
	f(&e)
	return e
}

// oldKESSeal implements the KES ≤ v0.6.0 key derivation on its own: the
// AES-256 subkey is the two blocks E(i‖iv[:12]) ⊕ E(i+1‖iv[4:]) for i = 0
// and 2, E being AES under the key material and i a little-endian uint32;
// the subkey then seals with AES-256-GCM. No real vector
// exists: this pins our reading of that format.
func oldKESSeal(t *testing.T, material, pt, ad []byte) testEnvelope {
	t.Helper()
	iv, nonce := bytes.Repeat([]byte{0xa5}, 16), bytes.Repeat([]byte{0x5a}, 12)
	b, _ := aes.NewCipher(material)
	block := func(i uint32, part []byte) []byte {
		in := binary.LittleEndian.AppendUint32(nil, i)
		out := make([]byte, 16)
		b.Encrypt(out, append(in, part...))
		return out
	}
	var subkey []byte
	for i := uint32(0); i < 4; i += 2 {
		x, y := block(i, iv[:12]), block(i+1, iv[4:])
		for j := range x {
			x[j] ^= y[j]
		}
		subkey = append(subkey, x...)
	}
	sb, _ := aes.NewCipher(subkey)
	g, _ := cipher.NewGCM(sb)
	return testEnvelope{label: "AES-256-GCM", iv: iv, nonce: nonce, sealed: g.Seal(nil, nonce, pt, ad)}
}

// TestDecryptRawThatParsesAsMsgpack builds a raw ciphertext whose bytes
// form a valid msgpack envelope (the plaintext is chosen so): the envelope
// does not authenticate, and Decrypt must still open it as raw.
func TestDecryptRawThatParsesAsMsgpack(t *testing.T) {
	t.Parallel()
	m := material0to31()
	k := importKES(t, newREK(t), hsm.AES256, m, nil, "k")
	ad := []byte("{}")
	iv, nonce := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 12)
	const ptLen = 64
	ks := minioSealWith(t, hsm.AES256, m, iv, nonce, make([]byte, ptLen), ad)[:ptLen] // Keystream.
	header := []byte{0x95, 0xa6, 'A', 'E', 'S', '2', '5', '6', 0xa0, 0xc4, 16}
	header = append(header, make([]byte, 16)...)
	header = append(append(header, 0xc4, 12), make([]byte, 12)...)
	header = binary.BigEndian.AppendUint32(append(header, 0xc6), uint32(ptLen+44-len(header)-5))
	pt := make([]byte, ptLen)
	for i := range pt {
		pt[i] = ks[i]
		if i < len(header) {
			pt[i] ^= header[i]
		}
	}
	ct := minioSealWith(t, hsm.AES256, m, iv, nonce, pt, ad)
	if !bytes.HasPrefix(ct, header) {
		t.Fatalf("test setup: ciphertext does not start with the msgpack header")
	}
	got, err := k.Decrypt(ct, ad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Errorf("Decrypt(raw ciphertext that parses as msgpack) = %x, %v, want the plaintext", got, err)
	}
}

// TestKESHMACVector reproduces KES /v1/key/hmac of minio-default-key
// (testdata/kes/README.md) through ImportVersionKES → seal → OpenVersion.
func TestKESHMACVector(t *testing.T) {
	t.Parallel()
	const want = "82ff2f9e89eeffbf380dbc47c11a6169555e4c66e050e3db846b64428936653e"
	kt, material, hmacKey, _ := kesKeyFile(t, "current/fs-keystore/minio-default-key")
	rek := newREK(t)
	k := importKES(t, rek, kt, material, hmacKey, "minio-default-key")
	if got := hex.EncodeToString(k.MAC([]byte("message"))); got != want {
		t.Errorf("MAC(message) = %s, want %s", got, want)
	}
	// Without an HMAC key, ImportVersionKES is ImportVersion: derived MAC key.
	const derived = "600ad9055f20b9a7a05aced099d78deff3f045bd9218b1164d3e140eba52d2e9" // TestMAC.
	if got := hex.EncodeToString(importKES(t, rek, hsm.AES256, material0to31(), nil, "j").MAC([]byte("message"))); got != derived {
		t.Errorf("MAC without HMAC key = %s, want %s", got, derived)
	}
	if strings.Contains(k.String(), hex.EncodeToString(hmacKey)[:8]) {
		t.Errorf("String() = %q reveals the HMAC key", k.String())
	}
}

func TestImportVersionKESErrors(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	aad := hsm.VersionAAD("e", "k", 1)
	m := material0to31()
	for _, tc := range []struct {
		kt        hsm.KeyType
		raw, hmac []byte
		want      error
	}{
		{hsm.AES256, m, make([]byte, 31), hsm.ErrInvalidHMACKey},
		{hsm.AES256, m, make([]byte, 33), hsm.ErrInvalidHMACKey},
		{hsm.AES256, m, []byte{}, hsm.ErrInvalidHMACKey},
		{hsm.AES256, m[:16], make([]byte, 32), hsm.ErrInvalidKeyMaterial},
		{"AES128", m, make([]byte, 32), hsm.ErrInvalidKeyType},
	} {
		if _, _, err := rek.ImportVersionKES(tc.kt, tc.raw, tc.hmac, aad); !errors.Is(err, tc.want) {
			t.Errorf("ImportVersionKES(%s, %d-byte key, %d-byte HMAC key) err = %v, want %v", tc.kt, len(tc.raw), len(tc.hmac), err, tc.want)
		}
	}
	sealed, _, err := rek.ImportVersionKES(hsm.ChaCha20, m, bytes.Repeat([]byte{3}, 32), aad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rek.OpenVersion(sealed, hsm.VersionAAD("e", "other", 1), 1); !errors.Is(err, hsm.ErrUnseal) {
		t.Errorf("OpenVersion(moved KES version) err = %v, want ErrUnseal", err)
	}
	k, err := rek.OpenVersion(sealed, aad, 1)
	if err != nil || k.Type() != hsm.ChaCha20 {
		t.Fatalf("OpenVersion = %v, %v, want a ChaCha20 key", k, err)
	}
}

// TestOpenPreHMACVersions opens key versions sealed before ImportVersionKES
// existed (testdata/kes/pre-hmac-versions.json, written by the hsm of
// commit 8aa561a): old blobs must keep opening, with the same fingerprint,
// derived MAC key and ciphertexts.
func TestOpenPreHMACVersions(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/kes/pre-hmac-versions.json")
	if err != nil {
		t.Fatal(err)
	}
	type version struct {
		KeyType       string `json:"key_type"`
		Enclave       string `json:"enclave"`
		Key           string `json:"key"`
		Version       uint32 `json:"version"`
		SealedHex     string `json:"sealed_hex"`
		Fingerprint   string `json:"fingerprint"`
		MACMessageHex string `json:"mac_message_hex"`
		CiphertextHex string `json:"ciphertext_hex"`
	}
	var fx struct {
		Softkey      string    `json:"softkey"`
		SealedREKHex string    `json:"sealed_rek_hex"`
		Versions     []version `json:"versions"`
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	w, err := softkey.Parse(fx.Softkey)
	if err != nil {
		t.Fatal(err)
	}
	sealedREK, _ := hex.DecodeString(fx.SealedREKHex)
	rek, err := hsm.OpenREK(t.Context(), w, sealedREK)
	if err != nil {
		t.Fatalf("OpenREK err = %v", err)
	}
	if len(fx.Versions) != 2 {
		t.Fatalf("fixture has %d versions, want 2", len(fx.Versions))
	}
	for _, v := range fx.Versions {
		sealed, _ := hex.DecodeString(v.SealedHex)
		ct, _ := hex.DecodeString(v.CiphertextHex)
		k, err := rek.OpenVersion(sealed, hsm.VersionAAD(v.Enclave, v.Key, v.Version), v.Version)
		if err != nil {
			t.Fatalf("OpenVersion(%s) err = %v", v.Key, err)
		}
		pt, err := k.Decrypt(ct, []byte("ctx"))
		if string(k.Type()) != v.KeyType || k.Fingerprint() != v.Fingerprint || hex.EncodeToString(k.MAC([]byte("message"))) != v.MACMessageHex || err != nil || string(pt) != "hello" {
			t.Errorf("old %s: type %s, fingerprint %s, MAC %x, Decrypt %q %v; want %s, %s, %s, hello",
				v.Key, k.Type(), k.Fingerprint(), k.MAC([]byte("message")), pt, err, v.KeyType, v.Fingerprint, v.MACMessageHex)
		}
	}
}

// FuzzKESCiphertext feeds arbitrary bytes to Decrypt under every key of
// the KES vectors. It must never panic, must fail only with ErrDecrypt, and
// may succeed only on a re-encoding of a genuine vector: the plaintext and
// context must then be one of the vectors'.
func FuzzKESCiphertext(f *testing.F) {
	rek := newREK(f)
	vs := loadKESVectors(f)
	keys := map[string]*hsm.Key{}
	known := map[string]bool{}
	for _, v := range vs {
		if _, ok := keys[v.KeyFile]; !ok {
			kt, material, hmacKey, _ := kesKeyFile(f, v.KeyFile)
			keys[v.KeyFile] = importKES(f, rek, kt, material, hmacKey, "k")
		}
		ad, pt, ct := decodeVector(f, v)
		known[string(ad)+"\x00"+string(pt)] = true
		f.Add(ct, ad)
	}
	f.Add([]byte{0x95}, []byte{})
	f.Add([]byte(`{"aead":"AES256","iv":"","nonce":"","bytes":""}`), []byte("{}"))
	f.Fuzz(func(t *testing.T, ct, ad []byte) {
		for name, k := range keys {
			pt, err := k.Decrypt(ct, ad)
			if err == nil {
				if !known[string(ad)+"\x00"+string(pt)] {
					t.Fatalf("Decrypt under %s accepted a forged ciphertext %x", name, ct)
				}
				continue
			}
			if !errors.Is(err, hsm.ErrDecrypt) || pt != nil {
				t.Fatalf("Decrypt(%x) = %x, %v, want nil, ErrDecrypt", ct, pt, err)
			}
		}
	})
}
