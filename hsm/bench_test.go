package hsm_test

import (
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
