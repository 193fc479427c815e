package migrate_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/migrate"
	"github.com/kmsledger/kmsledger/migrate/migratetest"
)

// BenchmarkMigrate migrates a KES file key store of b.N keys into one
// enclave of a node (in process, HTTPS) and reports keys/s.
//
//	go test -run '^$' -bench BenchmarkMigrate -benchtime 20000x ./migrate
func BenchmarkMigrate(b *testing.B) {
	node := nodetest.Start(b, nodetest.Options{})
	c := node.Client(b, node.RootKey)
	if err := c.CreateEnclave(b.Context(), "e1"); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if _, err := migratetest.WriteFSKeystore(dir, b.N, rand.Reader); err != nil {
		b.Fatal(err)
	}
	src, err := migrate.OpenFS(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	st, err := migrate.Run(b.Context(), src, c, migrate.Options{Enclave: "e1"})
	if err != nil || st.Imported.Load() != int64(b.N) {
		b.Fatalf("Run = %v, %v; want %d imported", st, err, b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "keys/s")
}
