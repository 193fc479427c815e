package api_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/nodetest"
)

// BenchmarkTransit runs the Transit API's encrypt and decrypt of a 32-byte
// data key (with SeaweedFS's context, one JSON request each) next to the
// kms API's GenerateKey and Decrypt, on the same node and key, in one run:
//
//	go test ./api -run '^$' -bench Transit -benchtime 3s
func BenchmarkTransit(b *testing.B) {
	n := nodetest.Start(b, nodetest.Options{Configure: func(c *api.Config) { c.TransitMounts = map[string]string{"transit": benchEnclave} }})
	s := fromNode(b, n)
	c := s.client("")
	b.Cleanup(c.Close)
	ctx := context.Background()
	if err := c.CreateEnclave(ctx, benchEnclave); err != nil {
		b.Fatal(err)
	}
	if err := c.CreateKey(ctx, benchEnclave, benchKey, "", false); err != nil {
		b.Fatal(err)
	}
	ad := benchAD()
	g, err := c.GenerateKey(ctx, benchEnclave, benchKey, 0, ad, 32)
	if err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: n.Roots}, MaxIdleConnsPerHost: 64}}
	b.Cleanup(hc.CloseIdleConnections)
	post := func(path string, body map[string]any, field string) func(context.Context) error {
		j, _ := json.Marshal(body)
		return func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, "PUT", "https://"+n.Addr+path, bytes.NewReader(j))
			req.Header.Set("X-Vault-Token", n.RootKey)
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var out struct{ Data map[string]any }
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.Data[field] == nil {
				io.Copy(io.Discard, resp.Body)
				return fmt.Errorf("bench: %s: status %d, %v", path, resp.StatusCode, err)
			}
			return nil
		}
	}
	sw := b64s(`{"aws:s3:arn":"arn:aws:s3:::bucket/object"}`)
	pt := b64s("0123456789abcdef0123456789abcdef")
	enc := s.callOnce(b, hc, n.RootKey, map[string]any{"plaintext": pt, "context": sw})

	b.Run("kms-GenerateKey", func(b *testing.B) {
		runParallel(b, 1, "", func(ctx context.Context) error {
			_, err := c.GenerateKey(ctx, benchEnclave, benchKey, 0, ad, 32)
			return err
		})
	})
	b.Run("kms-Decrypt", func(b *testing.B) {
		runParallel(b, 1, "", func(ctx context.Context) error {
			_, err := c.Decrypt(ctx, benchEnclave, benchKey, 0, g.Ciphertext, ad)
			return err
		})
	})
	b.Run("transit-encrypt", func(b *testing.B) {
		runParallel(b, 1, "", post("/v1/transit/encrypt/"+benchKey, map[string]any{"plaintext": pt, "context": sw}, "ciphertext"))
	})
	b.Run("transit-decrypt", func(b *testing.B) {
		runParallel(b, 1, "", post("/v1/transit/decrypt/"+benchKey, map[string]any{"ciphertext": enc, "context": sw}, "plaintext"))
	})
}

// callOnce encrypts once over Transit and returns the ciphertext.
func (s *stack) callOnce(b *testing.B, hc *http.Client, token string, body map[string]any) string {
	b.Helper()
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest("PUT", "https://"+s.addr+"/v1/transit/encrypt/"+benchKey, bytes.NewReader(j))
	req.Header.Set("X-Vault-Token", token)
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Data struct{ Ciphertext string } }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Data.Ciphertext == "" {
		b.Fatalf("encrypt: %v", err)
	}
	return out.Data.Ciphertext
}
