package ledger

import (
	"bytes"
	"context"
	"testing"
)

// BenchmarkBackupRestore backs up and restores a ledger of 2,000 events
// (b.N times) and reports events per second of each.
//
//	go test ./ledger -run '^$' -bench BackupRestore -benchtime 1x
func BenchmarkBackupRestore(b *testing.B) {
	const events = 2000
	ctx := context.Background()
	src := b.TempDir()
	s := openTestStore(b, src)
	mustAppend(b, s, KeySubject("enc", "bulk"), events)
	var backup, restore float64
	for b.Loop() {
		var buf bytes.Buffer
		t := b.Elapsed()
		if _, err := s.Backup(ctx, &buf, nil); err != nil {
			b.Fatal(err)
		}
		backup += b.Elapsed().Seconds() - t.Seconds()
		bf, err := openBackupBytes(buf.Bytes(), BackupFormat)
		if err != nil {
			b.Fatal(err)
		}
		dst, err := Open(ctx, Config{Dir: b.TempDir(), NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		t = b.Elapsed()
		if _, err := dst.Restore(ctx, bf, RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
		restore += b.Elapsed().Seconds() - t.Seconds()
		dst.Close()
	}
	b.ReportMetric(float64(events*b.N)/backup, "backup-events/s")
	b.ReportMetric(float64(events*b.N)/restore, "restore-events/s")
}
