package hsm_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/hsm/softkey"
)

// goldenV01 is testdata/ciphertext-v01.json: the whole chain as stored
// before format 0x02 existed (softkey → sealed REK → sealed key versions →
// client ciphertexts in format 0x01). See testdata/README.md.
type goldenV01 struct {
	SoftKey   string `json:"softkey"`
	SealedREK string `json:"sealed_rek_hex"`
	Vectors   []struct {
		Description   string `json:"description"`
		KeyType       string `json:"key_type"`
		KeyHex        string `json:"key_hex"`
		Enclave       string `json:"enclave"`
		Key           string `json:"key"`
		Version       uint32 `json:"version"`
		SealedVersion string `json:"sealed_version_hex"`
		ADHex         string `json:"associated_data_hex"`
		PlaintextHex  string `json:"plaintext_hex"`
		CiphertextHex string `json:"ciphertext_hex"`
	} `json:"vectors"`
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// TestGoldenV01 opens the stored REK and key versions and decrypts the
// format-0x01 ciphertexts written by earlier releases: stored material and
// issued ciphertexts keep working without any migration.
func TestGoldenV01(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/ciphertext-v01.json")
	if err != nil {
		t.Fatal(err)
	}
	var g goldenV01
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	w, err := softkey.Parse(g.SoftKey)
	if err != nil {
		t.Fatal(err)
	}
	rek, err := hsm.OpenREK(t.Context(), w, unhex(t, g.SealedREK))
	if err != nil {
		t.Fatalf("OpenREK(golden) err = %v, want nil", err)
	}
	for _, v := range g.Vectors {
		t.Run(v.KeyType+"/"+v.Description, func(t *testing.T) {
			kt, err := hsm.ParseKeyType(v.KeyType)
			if err != nil {
				t.Fatal(err)
			}
			k, err := rek.OpenVersion(unhex(t, v.SealedVersion), hsm.VersionAAD(v.Enclave, v.Key, v.Version), v.Version)
			if err != nil {
				t.Fatalf("OpenVersion(golden) err = %v, want nil", err)
			}
			if k.Type() != kt || k.Fingerprint() != hsm.Fingerprint(unhex(t, v.KeyHex)) {
				t.Fatalf("golden key version = %s, want %s with the vector's material", k, kt)
			}
			ct, ad, pt := unhex(t, v.CiphertextHex), unhex(t, v.ADHex), unhex(t, v.PlaintextHex)
			if ct[0] != 'K' || ct[1] != 0x01 {
				t.Fatalf("golden header = % x, want 4b 01", ct[:2])
			}
			if got, ok := hsm.CiphertextVersion(ct); !ok || got != v.Version {
				t.Errorf("CiphertextVersion = %d, %v, want %d, true", got, ok, v.Version)
			}
			got, err := k.Decrypt(ct, ad)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("Decrypt(golden v01) = %x, %v, want %x, nil", got, err, pt)
			}
			// A second key version with the same material, imported fresh,
			// also opens it: only the material and the header matter.
			k2 := importKey(t, newREK(t), kt, unhex(t, v.KeyHex), v.Enclave, v.Key, v.Version)
			if got, err := k2.Decrypt(ct, ad); err != nil || !bytes.Equal(got, pt) {
				t.Errorf("Decrypt(golden v01) with re-imported material = %x, %v, want %x, nil", got, err, pt)
			}
			wantDecryptErr(t, k, ct, append(bytes.Clone(ad), 'x'), "golden v01 with other ad")
			bad := bytes.Clone(ct)
			bad[len(bad)-1] ^= 1
			wantDecryptErr(t, k, bad, ad, "golden v01 with a flipped tag bit")
		})
	}
}
