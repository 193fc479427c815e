package hsm_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/hsm"
)

// material0to31 is 00 01 … 1f, the KES test vectors' imported key.
func material0to31() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func importKey(t testing.TB, rek *hsm.REK, kt hsm.KeyType, raw []byte, enclave, name string, version uint32) *hsm.Key {
	t.Helper()
	aad := hsm.VersionAAD(enclave, name, version)
	sealed, _, err := rek.ImportVersion(kt, raw, aad)
	if err != nil {
		t.Fatalf("ImportVersion err = %v, want nil", err)
	}
	k, err := rek.OpenVersion(sealed, aad, version)
	if err != nil {
		t.Fatalf("OpenVersion err = %v, want nil", err)
	}
	return k
}

func generateKey(t testing.TB, rek *hsm.REK, kt hsm.KeyType, version uint32) *hsm.Key {
	t.Helper()
	aad := hsm.VersionAAD("enclave", "key", version)
	sealed, _, err := rek.GenerateVersion(kt, aad)
	if err != nil {
		t.Fatalf("GenerateVersion(%s) err = %v, want nil", kt, err)
	}
	k, err := rek.OpenVersion(sealed, aad, version)
	if err != nil {
		t.Fatalf("OpenVersion err = %v, want nil", err)
	}
	return k
}

func TestParseKeyType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    hsm.KeyType
		wantErr bool
	}{
		{"AES256", hsm.AES256, false},
		{"ChaCha20", hsm.ChaCha20, false},
		{"", "", true},
		{"aes256", "", true},
		{"CHACHA20", "", true},
		{"AES-256", "", true},
		{" AES256", "", true},
	}
	for _, tc := range tests {
		got, err := hsm.ParseKeyType(tc.in)
		if tc.wantErr {
			if !errors.Is(err, hsm.ErrInvalidKeyType) {
				t.Errorf("ParseKeyType(%q) = %q, %v, want ErrInvalidKeyType", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseKeyType(%q) = %q, %v, want %q, nil", tc.in, got, err, tc.want)
		}
	}
}

func TestVersionAADUnambiguous(t *testing.T) {
	t.Parallel()
	type place struct {
		enclave, key string
		version      uint32
	}
	places := []place{
		{"ab", "c", 1}, {"a", "bc", 1}, {"abc", "", 1}, {"", "abc", 1},
		{"a", "b", 1}, {"a", "b", 2}, {"a", "b", 1 << 24}, {"b", "a", 1},
		{"a\x00\x00\x00\x01b", "", 1}, {"a", "\x00\x00\x00\x01b", 1},
	}
	seen := map[string]place{}
	for _, p := range places {
		aad := string(hsm.VersionAAD(p.enclave, p.key, p.version))
		if other, dup := seen[aad]; dup {
			t.Errorf("VersionAAD(%+v) == VersionAAD(%+v)", p, other)
		}
		seen[aad] = p
	}
	if !bytes.Equal(hsm.VersionAAD("e", "k", 7), hsm.VersionAAD("e", "k", 7)) {
		t.Errorf("VersionAAD is not deterministic")
	}
	want := "\x00\x00\x00\x18kmsledger/key-version/v1\x00\x00\x00\x01e\x00\x00\x00\x01k\x00\x00\x00\x07"
	if got := string(hsm.VersionAAD("e", "k", 7)); got != want {
		t.Errorf("VersionAAD(e, k, 7) = %q, want %q", got, want)
	}
}

// TestOpenVersionMoved shows a sealed version only opens at its own place.
func TestOpenVersionMoved(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	aad := hsm.VersionAAD("enclave", "key", 3)
	sealed, _, err := rek.GenerateVersion(hsm.AES256, aad)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		aad  []byte
	}{
		{"other enclave", hsm.VersionAAD("enclave2", "key", 3)},
		{"other key", hsm.VersionAAD("enclave", "key2", 3)},
		{"other version", hsm.VersionAAD("enclave", "key", 4)},
		{"nil aad", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := rek.OpenVersion(sealed, tc.aad, 3); !errors.Is(err, hsm.ErrUnseal) {
				t.Errorf("OpenVersion(%s) err = %v, want ErrUnseal", tc.name, err)
			}
		})
	}
	if _, err := newREK(t).OpenVersion(sealed, aad, 3); !errors.Is(err, hsm.ErrUnseal) {
		t.Errorf("OpenVersion(other REK) err = %v, want ErrUnseal", err)
	}
	for i := range len(sealed) * 8 {
		bad := bytes.Clone(sealed)
		bad[i/8] ^= 1 << (i % 8)
		if _, err := rek.OpenVersion(bad, aad, 3); !errors.Is(err, hsm.ErrUnseal) {
			t.Fatalf("OpenVersion(bit %d flipped) err = %v, want ErrUnseal", i, err)
		}
	}
}

func TestImportVersionSameMaterial(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	raw := material0to31()
	for _, kt := range []hsm.KeyType{hsm.AES256, hsm.ChaCha20} {
		t.Run(string(kt), func(t *testing.T) {
			aad1, aad2 := hsm.VersionAAD("e1", "k", 1), hsm.VersionAAD("e2", "k", 1)
			s1, fp1, err := rek.ImportVersion(kt, raw, aad1)
			if err != nil {
				t.Fatal(err)
			}
			s2, fp2, err := rek.ImportVersion(kt, raw, aad2)
			if err != nil {
				t.Fatal(err)
			}
			if fp1 != fp2 {
				t.Errorf("fingerprints of the same material = %s, %s, want equal", fp1, fp2)
			}
			if bytes.Equal(s1, s2) {
				t.Errorf("two imports gave identical sealed blobs, want distinct (random nonces)")
			}
			k1, err := rek.OpenVersion(s1, aad1, 1)
			if err != nil {
				t.Fatal(err)
			}
			k2, err := rek.OpenVersion(s2, aad2, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range [][2]*hsm.Key{{k1, k2}, {k2, k1}} {
				ct, err := p[0].Encrypt([]byte("payload"), []byte("ad"))
				if err != nil {
					t.Fatal(err)
				}
				if pt, err := p[1].Decrypt(ct, []byte("ad")); err != nil || string(pt) != "payload" {
					t.Errorf("other import Decrypt = %q, %v, want payload, nil", pt, err)
				}
			}
		})
	}
}

// TestFingerprintKnownAnswer pins fingerprint = hex(HMAC-SHA256(material,
// "kmsledger/fingerprint/v1")), computed independently.
func TestFingerprintKnownAnswer(t *testing.T) {
	t.Parallel()
	const want = "52fc212db558f0d901670a56a386122b1f413667a3e78fa9f93f79b2726d8f2d"
	rek := newREK(t)
	_, fp, err := rek.ImportVersion(hsm.AES256, material0to31(), hsm.VersionAAD("e", "k", 1))
	if err != nil {
		t.Fatal(err)
	}
	if fp != want {
		t.Errorf("ImportVersion fingerprint = %s, want %s", fp, want)
	}
	if k := importKey(t, rek, hsm.ChaCha20, material0to31(), "e", "k", 1); k.Fingerprint() != want {
		t.Errorf("Key.Fingerprint() = %s, want %s", k.Fingerprint(), want)
	}
}

func TestGenerateVersionFresh(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	aad := hsm.VersionAAD("e", "k", 1)
	_, fp1, err := rek.GenerateVersion(hsm.AES256, aad)
	if err != nil {
		t.Fatal(err)
	}
	_, fp2, err := rek.GenerateVersion(hsm.AES256, aad)
	if err != nil {
		t.Fatal(err)
	}
	if fp1 == fp2 || len(fp1) != 64 {
		t.Errorf("GenerateVersion fingerprints = %s, %s, want two distinct 64-hex values", fp1, fp2)
	}
}

func TestVersionInvalidInput(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	aad := hsm.VersionAAD("e", "k", 1)
	tests := []struct {
		name    string
		kt      hsm.KeyType
		raw     []byte
		wantErr error
	}{
		{"unknown type", "AES128", make([]byte, 32), hsm.ErrInvalidKeyType},
		{"empty type", "", make([]byte, 32), hsm.ErrInvalidKeyType},
		{"nil material", hsm.AES256, nil, hsm.ErrInvalidKeyMaterial},
		{"31 bytes", hsm.AES256, make([]byte, 31), hsm.ErrInvalidKeyMaterial},
		{"33 bytes", hsm.ChaCha20, make([]byte, 33), hsm.ErrInvalidKeyMaterial},
		{"64 bytes", hsm.ChaCha20, make([]byte, 64), hsm.ErrInvalidKeyMaterial},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := rek.ImportVersion(tc.kt, tc.raw, aad); !errors.Is(err, tc.wantErr) {
				t.Errorf("ImportVersion(%s) err = %v, want %v", tc.name, err, tc.wantErr)
			}
		})
	}
	if _, _, err := rek.GenerateVersion("AES128", aad); !errors.Is(err, hsm.ErrInvalidKeyType) {
		t.Errorf("GenerateVersion(AES128) err = %v, want ErrInvalidKeyType", err)
	}
}

// TestNoMaterialInOutputs checks that the raw material appears neither in
// sealed blobs nor in anything printed about the key.
func TestNoMaterialInOutputs(t *testing.T) {
	t.Parallel()
	rek := newREK(t)
	raw := material0to31()
	forms := [][]byte{raw, []byte(hex.EncodeToString(raw)), []byte(base64.StdEncoding.EncodeToString(raw))}
	for _, kt := range []hsm.KeyType{hsm.AES256, hsm.ChaCha20} {
		aad := hsm.VersionAAD("e", "k", 1)
		sealed, _, err := rek.ImportVersion(kt, raw, aad)
		if err != nil {
			t.Fatal(err)
		}
		k, err := rek.OpenVersion(sealed, aad, 1)
		if err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		slog.New(slog.NewTextHandler(&log, nil)).Info("key", "key", k)
		printed := fmt.Sprintf("%v %+v %s", k, k, k) + log.String()
		for _, f := range forms {
			if bytes.Contains(sealed, f[:16]) {
				t.Errorf("%s sealed blob contains (part of) the material", kt)
			}
			if strings.Contains(printed, string(f[:16])) {
				t.Errorf("%s printed key %q contains the material", kt, printed)
			}
		}
		if !strings.Contains(log.String(), "fingerprint=") {
			t.Errorf("slog output %q lacks the fingerprint", log.String())
		}
	}
	if raw[0] != 0 || raw[31] != 31 {
		t.Errorf("ImportVersion modified its raw argument")
	}
}
