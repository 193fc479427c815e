package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func auditRecord(n int) *AuditRecord {
	return &AuditRecord{Time: time.Date(2026, 1, 2, 3, 4, 5, n, time.UTC), Node: "n1", Identity: "h1:test",
		Method: "POST", Path: fmt.Sprintf("/v1/kms/r%d", n), Status: 200, Client: "127.0.0.1:1"}
}

// storedPaths returns the Path of every stored record, and how many
// AUDIT messages hold them.
func storedPaths(tb testing.TB, s *Store) (paths []string, msgs uint64) {
	tb.Helper()
	err := s.AuditRecords(context.Background(), 1, 0, func(seq uint64, r AuditRecord) error {
		paths, msgs = append(paths, r.Path), seq
		return nil
	})
	if err != nil {
		tb.Fatalf("AuditRecords err = %v", err)
	}
	return paths, msgs
}

func TestAuditorModes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name             string
		cfg              AuditConfig
		records          int
		minMsgs, maxMsgs uint64 // AUDIT messages after Close
	}{
		// Without a tick, a half-full buffer is stored at once and Close
		// stores the rest; a message never holds more than Batch records:
		// at least 10/4 messages, at most one per record.
		{"batched, half batches", AuditConfig{Interval: time.Hour, Batch: 4}, 10, 3, 10},
		// Sync mode stores before Record returns: one message per record
		// when records come one at a time.
		{"sync", AuditConfig{Sync: true}, 5, 5, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openTestStore(t, "")
			a := s.NewAuditor(tc.cfg)
			for i := range tc.records {
				if err := a.Record(context.Background(), auditRecord(i)); err != nil {
					t.Fatalf("Record #%d err = %v", i, err)
				}
				if tc.cfg.Sync {
					if _, msgs := storedPaths(t, s); msgs != uint64(i+1) {
						t.Fatalf("after sync Record #%d: %d AUDIT messages, want %d", i, msgs, i+1)
					}
				}
			}
			if err := a.Close(); err != nil {
				t.Fatalf("Close err = %v", err)
			}
			paths, msgs := storedPaths(t, s)
			if len(paths) != tc.records || msgs < tc.minMsgs || msgs > tc.maxMsgs {
				t.Fatalf("stored %d records in %d messages, want %d in %d..%d", len(paths), msgs, tc.records, tc.minMsgs, tc.maxMsgs)
			}
			for i, p := range paths {
				if want := fmt.Sprintf("/v1/kms/r%d", i); p != want {
					t.Fatalf("record %d path = %s, want %s (in order)", i, p, want)
				}
			}
			if err := a.Record(context.Background(), auditRecord(99)); !errors.Is(err, ErrClosed) {
				t.Fatalf("Record after Close err = %v, want ErrClosed", err)
			}
		})
	}
}

// TestAuditorIntervalFlush: in batched mode a record is stored within
// one interval, without Close and without filling a batch.
func TestAuditorIntervalFlush(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	a := s.NewAuditor(AuditConfig{Interval: 10 * time.Millisecond, Batch: 100})
	defer a.Close()
	if err := a.Record(context.Background(), auditRecord(1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { p, _ := storedPaths(t, s); return len(p) == 1 })
}

// TestAuditorSplitsLargeFlushes: a flush larger than one message is
// stored as several of at most auditMaxMessage bytes, split between
// records (a buffer of that many bytes is also stored at once).
func TestAuditorSplitsLargeFlushes(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	a := s.NewAuditor(AuditConfig{Interval: time.Hour, Batch: 64})
	items := make([]AuditItem, 160) // 160 items of about 250 bytes: 40 KiB
	for i := range items {
		items[i] = AuditItem{Command: "KEY:GENERATE", Key: strings.Repeat("k", 200)}
	}
	for i := range 20 { // 20 x 40 KiB = 800 KiB > auditMaxMessage
		r := auditRecord(i)
		r.Items = items
		if err := a.Record(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	paths, msgs := storedPaths(t, s)
	if len(paths) != 20 || msgs < 2 {
		t.Fatalf("stored %d records in %d messages, want 20 in at least 2", len(paths), msgs)
	}
	err := scanStream(context.Background(), s.audit, auditStream, 1, msgs, func(m RawMessage) error {
		if len(m.Body) > auditMaxMessage {
			t.Errorf("AUDIT message %d is %d bytes, want at most %d", m.Seq, len(m.Body), auditMaxMessage)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAuditorCrashLosesAtMostOneBatch kills the flusher at an arbitrary
// moment and closes the Store under it, as a crash of the process would,
// while records arrive as fast as Record accepts them: of the records
// accepted (Record returned nil), at most Batch are missing from AUDIT,
// and the stored ones are the oldest. (cmd/kmsledger's
// TestAuditKillDashNine does the same with kill -9 of a server.)
func TestAuditorCrashLosesAtMostOneBatch(t *testing.T) {
	t.Parallel()
	const batch = 16
	for _, accepted := range []int{5, 100, 333} {
		t.Run(fmt.Sprintf("after %d records", accepted), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := openTestStore(t, dir)
			a := s.NewAuditor(AuditConfig{Interval: 5 * time.Millisecond, Batch: batch})
			for i := range accepted {
				r := auditRecord(0)
				r.Path = fmt.Sprintf("/r/%d", i)
				if err := a.Record(context.Background(), r); err != nil {
					t.Fatal(err)
				}
			}
			// The crash: the flusher can take nothing more from the
			// buffer (a store it has begun may land or not), and the
			// process's connection to the store goes away.
			a.mu.Lock()
			s.Close()

			s = openTestStore(t, dir)
			paths, _ := storedPaths(t, s)
			for i, p := range paths {
				if want := fmt.Sprintf("/r/%d", i); p != want {
					t.Fatalf("stored record %d = %s, want %s: stored records are not the oldest", i, p, want)
				}
			}
			if lost := accepted - len(paths); lost < 0 || lost > batch {
				t.Fatalf("%d accepted, %d stored: %d lost, want 0..%d", accepted, len(paths), lost, batch)
			}
			t.Logf("%d accepted, %d stored, %d lost (bound %d)", accepted, len(paths), accepted-len(paths), batch)
		})
	}
}
