package hsm_test

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"runtime"
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
	for _, c := range []struct {
		form    string
		compact bool
	}{{"keyset", false}, {"compact", true}} {
		for _, kt := range keyTypes {
			b.Run(c.form+"/"+string(kt), func(b *testing.B) { benchOpenVersion(b, kt, c.compact) })
		}
	}
}

// benchOpenVersion opens one version of type kt, sealed in the compact
// form or not, b.N times.
func benchOpenVersion(b *testing.B, kt hsm.KeyType, compact bool) {
	rek := newREK(b)
	if compact {
		rek = rek.CompactVersions()
	}
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
}

// BenchmarkKeyHeap: the live heap that unsealed key versions keep, as the
// key cache keeps them (B/key-kept, after a full GC), each used once.
func BenchmarkKeyHeap(b *testing.B) {
	rek := newREK(b)
	aad := hsm.VersionAAD("enclave", "key", 1)
	sealed, _, err := rek.GenerateVersion(hsm.AES256, aad)
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]*hsm.Key, 100_000)
	for b.Loop() {
		before := liveHeap()
		for i := range keys {
			if keys[i], err = rek.OpenVersion(sealed, aad, 1); err != nil {
				b.Fatal(err)
			}
			if _, err := keys[i].Encrypt([]byte("data"), nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(liveHeap()-before)/float64(len(keys)), "B/key-kept")
		clear(keys)
	}
}

// liveHeap is the live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
