package api_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kmsledger/kmsledger/ledger"
)

// BenchmarkGenerateKeyAudit is GenerateKey through the full stack with
// auditing off, batched (the default: 1 s, 512 records) and sync (every
// answer waits for its record to be stored; concurrent records share a
// store), in one run:
//
//	go test ./api -run '^$' -bench GenerateKeyAudit -benchtime 3s
func BenchmarkGenerateKeyAudit(b *testing.B) {
	modes := []struct {
		name string
		cfg  *ledger.AuditConfig
	}{
		{"off", nil},
		{"batched", &ledger.AuditConfig{}},
		{"sync", &ledger.AuditConfig{Sync: true}},
	}
	ad := benchAD()
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			s := startAuditStack(b, m.cfg)
			c := s.client("")
			b.Cleanup(c.Close)
			mustOK(b, c.CreateEnclave(ctx, benchEnclave))
			mustOK(b, c.CreateKey(ctx, benchEnclave, benchKey, "", false))
			runParallel(b, 1, "", func(ctx context.Context) error {
				g, err := c.GenerateKey(ctx, benchEnclave, benchKey, 0, ad, 32)
				if err == nil && len(g.Plaintext) != 32 {
					err = errors.New("bench: GenerateKey returned a short key")
				}
				return err
			})
			s.Stop()
		})
	}
}
