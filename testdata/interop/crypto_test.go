package interop

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/minio/kms-go/kms"
	"github.com/minio/kms-go/kms/cmds"
	pb "github.com/minio/kms-go/kms/protobuf"
)

// TestCrypto covers KEY:ENCRYPT, KEY:DECRYPT and KEY:GENERATE.
func TestCrypto(t *testing.T) {
	g := newGroup(t, "crypto")
	enc := newEnclave(t, "crypto")
	keys := []struct {
		name string
		typ  kms.SecretKeyType
	}{{"k-aes", kms.AES256}, {"k-chacha", kms.ChaCha20}}
	for _, k := range keys {
		mustCreateKey(t, enc, k.name, k.typ)
	}
	ad := []byte(`{"bucket":"bucket/object"}`)

	for _, k := range keys {
		g.run("Encrypt/Decrypt round trip "+k.typ.String(), func(t *testing.T) {
			msg := []byte("a secret message for " + k.name)
			ct, err := encryptRaw(ctx(t), env.Root, enc, &kms.EncryptRequest{Name: k.name, Plaintext: msg, AssociatedData: ad})
			noErr(t, "Encrypt", err)
			if ct[0].Version != 1 {
				t.Errorf("Encrypt Version = %d, want 1", ct[0].Version)
			}
			if bytes.Contains(ct[0].Ciphertext, msg) {
				t.Fatal("ciphertext contains the plaintext")
			}
			for _, version := range []int{0, ct[0].Version} {
				dec, err := env.Root.Decrypt(ctx(t), enc, &kms.DecryptRequest{Name: k.name, Version: version, Ciphertext: ct[0].Ciphertext, AssociatedData: ad})
				noErr(t, fmt.Sprintf("Decrypt Version %d", version), err)
				if !bytes.Equal(dec[0].Plaintext, msg) {
					t.Fatalf("Decrypt Version %d returned a different plaintext", version)
				}
			}
		})
	}
	g.run("Encrypt batch answers one KEY:ENCRYPT frame per request", func(t *testing.T) {
		reqs := make([]*kms.EncryptRequest, 5)
		for i := range reqs {
			reqs[i] = &kms.EncryptRequest{Name: keys[i%2].name, Plaintext: fmt.Appendf(nil, "msg-%d", i)}
		}
		ct, err := encryptRaw(ctx(t), env.Root, enc, reqs...)
		noErr(t, "Encrypt", err)
		if len(ct) != len(reqs) {
			t.Fatalf("got %d responses, want %d", len(ct), len(reqs))
		}
		for i, c := range ct {
			dec, err := env.Root.Decrypt(ctx(t), enc, &kms.DecryptRequest{Name: reqs[i].Name, Ciphertext: c.Ciphertext})
			noErr(t, "Decrypt", err)
			if !bytes.Equal(dec[0].Plaintext, reqs[i].Plaintext) {
				t.Fatalf("response %d decrypts to a different message", i)
			}
		}
	})
	g.run("pinned SDK Encrypt rejects the spec's KEY:ENCRYPT reply code", func(t *testing.T) {
		// The pinned SDK expects KEY:STATUS (204) frames in reply to
		// KEY:ENCRYPT; the spec says servers send 205. MinIO never calls
		// Encrypt. This pins the server to 205.
		_, err := env.Root.Encrypt(ctx(t), enc, &kms.EncryptRequest{Name: "k-aes", Plaintext: []byte("x")})
		var de *cmds.DecodeError
		if !errors.As(err, &de) || len(de.Data) < 2 || binary.BigEndian.Uint16(de.Data) != uint16(cmds.KeyEncrypt) {
			t.Fatalf("got %v, want a decode error for a KEY:ENCRYPT (205) frame", err)
		}
	})

	for _, tc := range []struct{ length, want int }{{0, 32}, {32, 32}, {64, 64}, {1024, 1024}} {
		g.run(fmt.Sprintf("GenerateKey Length %d gives %d bytes", tc.length, tc.want), func(t *testing.T) {
			gen, err := env.Root.GenerateKey(ctx(t), enc, &kms.GenerateKeyRequest{Name: "k-aes", AssociatedData: ad, Length: tc.length})
			noErr(t, "GenerateKey", err)
			if len(gen[0].Plaintext) != tc.want {
				t.Fatalf("plaintext is %d bytes, want %d", len(gen[0].Plaintext), tc.want)
			}
			if gen[0].Version != 1 {
				t.Errorf("Version = %d, want 1", gen[0].Version)
			}
			dec, err := env.Root.Decrypt(ctx(t), enc, &kms.DecryptRequest{Name: "k-aes", Ciphertext: gen[0].Ciphertext, AssociatedData: ad})
			noErr(t, "Decrypt", err)
			if !bytes.Equal(dec[0].Plaintext, gen[0].Plaintext) {
				t.Fatal("Decrypt returned a different data key")
			}
		})
	}
	g.run("GenerateKey Length 1025 fails", func(t *testing.T) {
		_, err := env.Root.GenerateKey(ctx(t), enc, &kms.GenerateKeyRequest{Name: "k-aes", Length: 1025})
		if err == nil {
			t.Fatal("GenerateKey with Length 1025 succeeded")
		}
	})
	g.run("GenerateKey batch of 64 and Decrypt batch of 64", func(t *testing.T) {
		const n = 64
		reqs := make([]*kms.GenerateKeyRequest, n)
		for i := range reqs {
			reqs[i] = &kms.GenerateKeyRequest{Name: keys[i%2].name, AssociatedData: fmt.Appendf(nil, `{"b":"b/o-%d"}`, i)}
		}
		gen, err := env.Root.GenerateKey(ctx(t), enc, reqs...)
		noErr(t, "GenerateKey", err)
		if len(gen) != n {
			t.Fatalf("got %d responses, want %d", len(gen), n)
		}
		seen := make(map[string]bool, n)
		decs := make([]*kms.DecryptRequest, n)
		for i, r := range gen {
			if len(r.Plaintext) != 32 {
				t.Fatalf("data key %d is %d bytes, want 32", i, len(r.Plaintext))
			}
			if seen[string(r.Plaintext)] {
				t.Fatalf("data key %d repeats an earlier one", i)
			}
			seen[string(r.Plaintext)] = true
			decs[i] = &kms.DecryptRequest{Name: reqs[i].Name, Ciphertext: r.Ciphertext, AssociatedData: reqs[i].AssociatedData}
		}
		dec, err := env.Root.Decrypt(ctx(t), enc, decs...)
		noErr(t, "Decrypt", err)
		if len(dec) != n {
			t.Fatalf("got %d Decrypt responses, want %d", len(dec), n)
		}
		for i := range dec {
			if !bytes.Equal(dec[i].Plaintext, gen[i].Plaintext) {
				t.Fatalf("item %d decrypts to a different data key", i)
			}
		}
	})

	gen, err := env.Root.GenerateKey(ctx(t), enc, &kms.GenerateKeyRequest{Name: "k-aes", AssociatedData: ad})
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	ciphertext := gen[0].Ciphertext
	g.run("Decrypt with Version 0 as MinIO does", func(t *testing.T) {
		dec, err := env.Root.Decrypt(ctx(t), enc, &kms.DecryptRequest{Name: "k-aes", Version: 0, Ciphertext: ciphertext, AssociatedData: ad})
		noErr(t, "Decrypt", err)
		if !bytes.Equal(dec[0].Plaintext, gen[0].Plaintext) {
			t.Fatal("Decrypt returned a different data key")
		}
	})
	for _, tc := range []struct {
		name string
		ad   []byte
	}{
		{"other object", []byte(`{"bucket":"bucket/other"}`)},
		{"empty", nil},
		{"extra space", []byte(`{"bucket": "bucket/object"}`)},
	} {
		g.run("Decrypt with wrong AD ("+tc.name+") is ErrDecrypt", func(t *testing.T) {
			_, err := env.Root.Decrypt(ctx(t), enc, &kms.DecryptRequest{Name: "k-aes", Ciphertext: ciphertext, AssociatedData: tc.ad})
			wantErr(t, err, kms.ErrDecrypt)
		})
	}
	for _, tc := range []struct {
		name   string
		tamper func([]byte) []byte
	}{
		{"last byte flipped", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{"middle byte flipped", func(b []byte) []byte { b[len(b)/2] ^= 0x80; return b }},
		{"first byte flipped", func(b []byte) []byte { b[0] ^= 1; return b }},
		{"truncated by one", func(b []byte) []byte { return b[:len(b)-1] }},
		{"one byte appended", func(b []byte) []byte { return append(b, 0) }},
		{"empty", func([]byte) []byte { return nil }},
	} {
		g.run("Decrypt of tampered ciphertext ("+tc.name+") is ErrDecrypt", func(t *testing.T) {
			bad := tc.tamper(bytes.Clone(ciphertext))
			_, err := env.Root.Decrypt(ctx(t), enc, &kms.DecryptRequest{Name: "k-aes", Ciphertext: bad, AssociatedData: ad})
			wantErr(t, err, kms.ErrDecrypt)
		})
	}
	g.run("Decrypt under another key is ErrDecrypt", func(t *testing.T) {
		_, err := env.Root.Decrypt(ctx(t), enc, &kms.DecryptRequest{Name: "k-chacha", Ciphertext: ciphertext, AssociatedData: ad})
		wantErr(t, err, kms.ErrDecrypt)
	})
	g.run("Decrypt with unknown key is ErrKeyNotFound", func(t *testing.T) {
		_, err := env.Root.Decrypt(ctx(t), enc, &kms.DecryptRequest{Name: "no-such-key", Ciphertext: ciphertext, AssociatedData: ad})
		wantErr(t, err, kms.ErrKeyNotFound)
	})
}

// encryptRaw sends KEY:ENCRYPT frames through the SDK's transport and decodes
// KEY:ENCRYPT (205) reply frames, as the spec requires. The pinned SDK's own
// Encrypt expects 204 frames and cannot be used against a conforming server.
func encryptRaw(ctx context.Context, c *kms.Client, enclave string, reqs ...*kms.EncryptRequest) ([]*kms.EncryptResponse, error) {
	var body []byte
	for _, r := range reqs {
		var err error
		if body, err = cmds.Encode(body, cmds.KeyEncrypt, r); err != nil {
			return nil, err
		}
	}
	resp, err := c.Send(ctx, &kms.Request{Enclave: enclave, Body: body})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength < 0 {
		return nil, errors.New("response has no Content-Length")
	}
	buf, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if int64(len(buf)) != resp.ContentLength {
		return nil, fmt.Errorf("body is %d bytes, Content-Length says %d", len(buf), resp.ContentLength)
	}
	var out []*kms.EncryptResponse
	for len(buf) > 0 {
		r := new(kms.EncryptResponse)
		if buf, err = cmds.Decode[pb.EncryptResponse](buf, cmds.KeyEncrypt, r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
