package hsm_test

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/kmsledger/kmsledger/hsm"
)

func benchKey(b *testing.B, kt hsm.KeyType) *hsm.Key {
	b.Helper()
	return generateKey(b, newREK(b), kt, 1)
}

var benchAD = []byte(`{"mybucket":"mybucket/path/to/object.txt"}`)

func BenchmarkEncrypt(b *testing.B) {
	for _, kt := range keyTypes {
		b.Run(string(kt), func(b *testing.B) {
			k, pt := benchKey(b, kt), make([]byte, 32)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.Encrypt(pt, benchAD); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGenerateDataKey(b *testing.B) {
	for _, kt := range keyTypes {
		b.Run(string(kt), func(b *testing.B) {
			k := benchKey(b, kt)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := k.GenerateDataKey(32, benchAD); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecrypt(b *testing.B) {
	for _, kt := range keyTypes {
		b.Run(string(kt), func(b *testing.B) {
			k := benchKey(b, kt)
			ct, err := k.Encrypt(make([]byte, 32), benchAD)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.Decrypt(ct, benchAD); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecryptFormat1 decrypts a stored format-0x01 ciphertext
// (testdata/ciphertext-v01.json), the path old ciphertexts take.
func BenchmarkDecryptFormat1(b *testing.B) {
	raw, err := os.ReadFile("testdata/ciphertext-v01.json")
	if err != nil {
		b.Fatal(err)
	}
	var g goldenV01
	if err := json.Unmarshal(raw, &g); err != nil {
		b.Fatal(err)
	}
	rek := newREK(b)
	for _, v := range g.Vectors[:2] { // 32-byte data keys, AES256 then ChaCha20
		b.Run(v.KeyType, func(b *testing.B) {
			material, _ := hex.DecodeString(v.KeyHex)
			ct, _ := hex.DecodeString(v.CiphertextHex)
			ad, _ := hex.DecodeString(v.ADHex)
			k := importKey(b, rek, hsm.KeyType(v.KeyType), material, v.Enclave, v.Key, v.Version)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.Decrypt(ct, ad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenVersion: unsealing a key version, what a key cache miss
// costs besides reading the sealed material; B/op is what an unsealed
// version allocates (most of it stays while it is cached).
func BenchmarkOpenVersion(b *testing.B) {
	for _, kt := range keyTypes {
		b.Run(string(kt), func(b *testing.B) {
			rek := newREK(b)
			aad := hsm.VersionAAD("enclave", "key", 1)
			sealed, _, err := rek.GenerateVersion(kt, aad)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rek.OpenVersion(sealed, aad, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
