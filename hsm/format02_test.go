package hsm_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/kmsledger/kmsledger/hsm"
)

// xaesSeal is an independent XAES-256-GCM (c2sp.org/XAES-256-GCM, written
// from the spec): L = AES-256_K(0^128), K1 = L·x in GF(2^128) (CMAC
// subkey), M1 = 00 01 'X' 00 ‖ N[:12], M2 = 00 02 'X' 00 ‖ N[:12],
// Kx = AES-256_K(M1 ⊕ K1) ‖ AES-256_K(M2 ⊕ K1), then AES-256-GCM(Kx, N[12:]).
func xaesAEAD(t *testing.T, key, nonce []byte) (cipher.AEAD, []byte) {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	var l, k1 [16]byte
	b.Encrypt(l[:], l[:])
	for i := range 15 {
		k1[i] = l[i]<<1 | l[i+1]>>7
	}
	k1[15] = l[15] << 1
	if l[0]&0x80 != 0 {
		k1[15] ^= 0x87
	}
	kx := make([]byte, 32)
	for i, prefix := range [][]byte{{0, 1, 'X', 0}, {0, 2, 'X', 0}} {
		m := append(bytes.Clone(prefix), nonce[:12]...)
		for j := range m {
			m[j] ^= k1[j]
		}
		b.Encrypt(kx[16*i:], m)
	}
	g, err := aes.NewCipher(kx)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(g)
	if err != nil {
		t.Fatal(err)
	}
	return a, nonce[12:]
}

// sealV2 builds a format-0x02 ciphertext independently of package hsm:
// K2 = HKDF-SHA256(material, info "kmsledger/ciphertext/v2/" ‖ type), then
// XAES-256-GCM or XChaCha20-Poly1305 over header ‖ ad.
func sealV2(t *testing.T, kt hsm.KeyType, material []byte, version uint32, nonce, pt, ad []byte) []byte {
	t.Helper()
	k2, err := hkdf.Key(sha256.New, material, nil, "kmsledger/ciphertext/v2/"+string(kt), 32)
	if err != nil {
		t.Fatal(err)
	}
	h := binary.BigEndian.AppendUint32([]byte{'K', 0x02}, version)
	aad := append(bytes.Clone(h), ad...)
	out := append(bytes.Clone(h), nonce...)
	switch kt {
	case hsm.AES256:
		a, n := xaesAEAD(t, k2, nonce)
		return a.Seal(out, n, pt, aad)
	case hsm.ChaCha20:
		a, err := chacha20poly1305.NewX(k2)
		if err != nil {
			t.Fatal(err)
		}
		return a.Seal(out, nonce, pt, aad)
	}
	t.Fatalf("key type %s", kt)
	return nil
}

// openV2 opens a format-0x02 ciphertext independently of package hsm.
func openV2(t *testing.T, kt hsm.KeyType, material, ct, ad []byte) ([]byte, error) {
	t.Helper()
	k2, err := hkdf.Key(sha256.New, material, nil, "kmsledger/ciphertext/v2/"+string(kt), 32)
	if err != nil {
		t.Fatal(err)
	}
	h, nonce, body := ct[:6], ct[6:30], ct[30:]
	aad := append(bytes.Clone(h), ad...)
	if kt == hsm.AES256 {
		a, n := xaesAEAD(t, k2, nonce)
		return a.Open(nil, n, body, aad)
	}
	a, err := chacha20poly1305.NewX(k2)
	if err != nil {
		t.Fatal(err)
	}
	return a.Open(nil, nonce, body, aad)
}

// TestXAESIndependentKnownAnswer checks the test's own XAES-256-GCM against
// the C2SP spec's test vectors, so the format tests below rest on it.
func TestXAESIndependentKnownAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct{ key, ad, want string }{
		{"0101010101010101010101010101010101010101010101010101010101010101", "", "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271"},
		{"0303030303030303030303030303030303030303030303030303030303030303", "c2sp.org/XAES-256-GCM", "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d"},
	}
	for _, tc := range tests {
		key, _ := hex.DecodeString(tc.key)
		a, n := xaesAEAD(t, key, []byte("ABCDEFGHIJKLMNOPQRSTUVWX"))
		if got := hex.EncodeToString(a.Seal(nil, n, []byte("XAES-256-GCM"), []byte(tc.ad))); got != tc.want {
			t.Errorf("XAES-256-GCM(%s…, ad %q) = %s, want %s", tc.key[:8], tc.ad, got, tc.want)
		}
	}
}

// TestFormat2KnownAnswer pins format 0x02 byte for byte: a ciphertext
// built from the specification (sealV2) with a fixed nonce decrypts with
// hsm.Key, hsm.Key's own output opens with the specification, and the
// fixed-nonce ciphertexts equal values recorded when the format was made.
func TestFormat2KnownAnswer(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	nonce := []byte("ABCDEFGHIJKLMNOPQRSTUVWX")
	pt := []byte("kmsledger data key 0123456789abc")
	ad := []byte(`{"mybucket":"mybucket/object"}`)
	want := map[hsm.KeyType]string{
		hsm.AES256:   "4b02000000054142434445464748494a4b4c4d4e4f505152535455565758",
		hsm.ChaCha20: "4b02000000054142434445464748494a4b4c4d4e4f505152535455565758",
	}
	pinned := map[hsm.KeyType]string{
		hsm.AES256:   xaesPinned,
		hsm.ChaCha20: xchachaPinned,
	}
	for _, kt := range keyTypes {
		t.Run(string(kt), func(t *testing.T) {
			k := importKey(t, rek, kt, material0to31(), "e", "k", 5)
			ct := sealV2(t, kt, material0to31(), 5, nonce, pt, ad)
			if got := hex.EncodeToString(ct[:30]); got != want[kt] {
				t.Fatalf("header ‖ nonce = %s, want %s", got, want[kt])
			}
			if got := hex.EncodeToString(ct[30:]); got != pinned[kt] {
				t.Errorf("format 2 ciphertext body = %s, want %s", got, pinned[kt])
			}
			got, err := k.Decrypt(ct, ad)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("Decrypt(specification ciphertext) = %x, %v, want %x, nil", got, err, pt)
			}
			mine, err := k.Encrypt(pt, ad)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := openV2(t, kt, material0to31(), mine, ad); err != nil || !bytes.Equal(got, pt) {
				t.Errorf("specification open of Encrypt output = %x, %v, want %x, nil", got, err, pt)
			}
		})
	}
}

// Format-0x02 bodies (ciphertext ‖ tag) of TestFormat2KnownAnswer's input,
// recorded from sealV2 when the format was introduced.
const (
	xaesPinned    = "c4d42a12576c73adf4f0c3c805bcb687573a463619b619797f35c212bf89d1910246dd2cb399a51800524eb2f42a9241"
	xchachaPinned = "ed42517500a853b0f97442b6e9edd7ea602f607de55f1e9509babf1fe1469cb09c235c51bf277407fa698a9aad796be6"
)

// TestFormat2Tamper: every bit flip, truncation, extension and associated
// data change fails; so does relabelling the format byte (0x02 → 0x01,
// 0x00, 0x03) or the version.
func TestFormat2Tamper(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	for _, kt := range keyTypes {
		t.Run(string(kt), func(t *testing.T) {
			t.Parallel()
			k := importKey(t, rek, kt, material0to31(), "e", "k", 3)
			ad := []byte("associated")
			ct, err := k.Encrypt([]byte("short message"), ad)
			if err != nil {
				t.Fatal(err)
			}
			if ct[1] != 0x02 {
				t.Fatalf("format byte = %#x, want 0x02", ct[1])
			}
			for i := range len(ct) * 8 {
				bad := bytes.Clone(ct)
				bad[i/8] ^= 1 << (i % 8)
				wantDecryptErr(t, k, bad, ad, fmt.Sprintf("bit %d flipped", i))
			}
			for n := range len(ct) {
				wantDecryptErr(t, k, ct[:n], ad, fmt.Sprintf("first %d bytes", n))
				wantDecryptErr(t, k, ct[n+1:], ad, fmt.Sprintf("without first %d bytes", n+1))
			}
			for i := range len(ad) * 8 {
				bad := bytes.Clone(ad)
				bad[i/8] ^= 1 << (i % 8)
				wantDecryptErr(t, k, ct, bad, fmt.Sprintf("ad bit %d flipped", i))
			}
			wantDecryptErr(t, k, ct, nil, "nil ad")
			wantDecryptErr(t, k, ct, append(bytes.Clone(ad), 0), "extended ad")
			wantDecryptErr(t, k, append(bytes.Clone(ct), 0), ad, "byte appended")
			for _, f := range []byte{0x00, 0x01, 0x03, 0xff} {
				bad := bytes.Clone(ct)
				bad[1] = f
				wantDecryptErr(t, k, bad, ad, fmt.Sprintf("format byte set to %#x", f))
			}
			// Relabelled to 0x01 with the 24-byte nonce cut to 12: a
			// well-formed format-0x01 ciphertext shape, still rejected.
			v1 := append([]byte{'K', 0x01}, ct[2:18]...)
			v1 = append(v1, ct[30:]...)
			wantDecryptErr(t, k, v1, ad, "relabelled as format 0x01 with a 12-byte nonce")
			if got, _ := k.Decrypt(ct, ad); string(got) != "short message" {
				t.Fatalf("Decrypt(original) = %q after the tamper loop, want the plaintext", got)
			}
		})
	}
}

// TestFormat2OtherKey: a format-0x02 ciphertext moved to another key,
// another version of the same material, or the same material under the
// other cipher does not decrypt.
func TestFormat2OtherKey(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	src := map[hsm.KeyType]*hsm.Key{
		hsm.AES256:   importKey(t, rek, hsm.AES256, material0to31(), "e", "k", 1),
		hsm.ChaCha20: importKey(t, rek, hsm.ChaCha20, material0to31(), "e", "k", 1),
	}
	for _, kt := range keyTypes {
		other := hsm.ChaCha20
		if kt == hsm.ChaCha20 {
			other = hsm.AES256
		}
		ct, err := src[kt].Encrypt([]byte("payload"), nil)
		if err != nil {
			t.Fatal(err)
		}
		wantDecryptErr(t, generateKey(t, rek, kt, 1), ct, nil, string(kt)+" ciphertext under other material")
		wantDecryptErr(t, src[other], ct, nil, string(kt)+" ciphertext under the same material, other cipher")
		v2 := importKey(t, rek, kt, material0to31(), "e", "k", 2)
		wantDecryptErr(t, v2, ct, nil, string(kt)+" version-1 ciphertext given to version 2")
		swapped := bytes.Clone(ct)
		binary.BigEndian.PutUint32(swapped[2:6], 2)
		wantDecryptErr(t, v2, swapped, nil, string(kt)+" version field changed to 2")
	}
}

// TestFormat2KeySeparation shows why format 0x02 uses a derived key: with
// the material itself, XChaCha20-Poly1305's HChaCha20(K, nonce[:16]) is
// MinIO's raw ChaCha20 derivation, and a format-0x02 ciphertext laid out as
// a MinIO one (ct ‖ tag ‖ nonce[:16] ‖ 0^4 ‖ nonce[16:]) would open. It
// must not; nor may the format-0x02 body open as format 0x01.
func TestFormat2KeySeparation(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	for _, kt := range keyTypes {
		k := importKey(t, rek, kt, material0to31(), "e", "k", 1)
		ad := []byte("ad")
		ct, err := k.Encrypt([]byte("payload"), ad)
		if err != nil {
			t.Fatal(err)
		}
		h, nonce, body := ct[:6], ct[6:30], ct[30:]
		minio := append(bytes.Clone(body), nonce[:16]...)
		minio = append(append(minio, 0, 0, 0, 0), nonce[16:]...)
		wantDecryptErr(t, k, minio, append(bytes.Clone(h), ad...), string(kt)+" format-2 ciphertext laid out as MinIO raw")
		// Sanity check of the layout: the same relabelling with the
		// material as key does open under MinIO's rule.
		if kt == hsm.ChaCha20 {
			a, err := chacha20poly1305.NewX(material0to31())
			if err != nil {
				t.Fatal(err)
			}
			forged := append(a.Seal(nil, nonce, []byte("payload"), append(bytes.Clone(h), ad...)), nonce[:16]...)
			forged = append(append(forged, 0, 0, 0, 0), nonce[16:]...)
			if got, err := k.Decrypt(forged, append(bytes.Clone(h), ad...)); err != nil || string(got) != "payload" {
				t.Errorf("XChaCha20 under the material, laid out as MinIO raw = %q, %v, want it to open (the confusion the derived key avoids)", got, err)
			}
		}
	}
}

// TestFormat2NonceUniqueness: 2^14 encryptions of one message give 2^14
// distinct nonces, distinct XAES salts (the nonce's first 12 bytes) and
// distinct ciphertexts.
func TestFormat2NonceUniqueness(t *testing.T) {
	t.Parallel()
	for _, kt := range keyTypes {
		k := generateKey(t, newREK(t), kt, 1)
		const n = 1 << 14
		salts, bodies := make(map[string]bool, n), make(map[string]bool, n)
		for i := range n {
			ct, err := k.Encrypt([]byte("same"), nil)
			if err != nil {
				t.Fatal(err)
			}
			salt, body := string(ct[6:18]), string(ct[30:])
			if salts[salt] || bodies[body] {
				t.Fatalf("%s: Encrypt %d repeated a salt or ciphertext", kt, i)
			}
			salts[salt], bodies[body] = true, true
		}
	}
}

// TestUsage: encryptions and successful decryptions are counted per Key;
// failures are not; old-format decryptions are counted apart.
func TestUsage(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	for _, kt := range keyTypes {
		t.Run(string(kt), func(t *testing.T) {
			k := importKey(t, rek, kt, material0to31(), "e", "minio", 1)
			if u := k.Usage(); u != (hsm.Usage{}) {
				t.Fatalf("Usage of a fresh key = %+v, want zero", u)
			}
			ct, err := k.Encrypt([]byte("x"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := k.GenerateDataKey(32, nil); err != nil {
				t.Fatal(err)
			}
			if _, _, err := k.GenerateDataKey(0, nil); err == nil {
				t.Fatal("GenerateDataKey(0) err = nil")
			}
			for range 3 {
				if _, err := k.Decrypt(ct, nil); err != nil {
					t.Fatal(err)
				}
			}
			wantDecryptErr(t, k, ct, []byte("other"), "wrong ad")
			wantDecryptErr(t, k, ct[:20], nil, "truncated")
			if got, want := k.Usage(), (hsm.Usage{Encryptions: 2, Decryptions: 3}); got != want {
				t.Errorf("Usage = %+v, want %+v", got, want)
			}
			// A MinIO raw ciphertext is an old format.
			mct := minioSeal(t, kt, material0to31(), []byte("y"), nil)
			if _, err := k.Decrypt(mct, nil); err != nil {
				t.Fatal(err)
			}
			if got, want := k.Usage(), (hsm.Usage{Encryptions: 2, Decryptions: 4, OldFormatDecryptions: 1}); got != want {
				t.Errorf("Usage after an old-format decrypt = %+v, want %+v", got, want)
			}
			// Another Key has its own counts.
			if u := importKey(t, rek, kt, material0to31(), "e", "minio", 1).Usage(); u != (hsm.Usage{}) {
				t.Errorf("Usage of another key = %+v, want zero", u)
			}
		})
	}
}

func TestCiphertextFormatAndAEAD(t *testing.T) {
	t.Parallel()
	if hsm.CiphertextFormat != 2 {
		t.Errorf("CiphertextFormat = %d, want 2", hsm.CiphertextFormat)
	}
	for kt, want := range map[hsm.KeyType]string{hsm.AES256: "XAES-256-GCM", hsm.ChaCha20: "XChaCha20-Poly1305", "AES128": ""} {
		if got := hsm.CiphertextAEAD(kt); got != want {
			t.Errorf("CiphertextAEAD(%q) = %q, want %q", kt, got, want)
		}
	}
}
