package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// limitAuditMessages sets a message size limit on AUDIT, the fault a
// record larger than it meets (the embedded server's 1 MiB limit, made
// small).
func limitAuditMessages(t *testing.T, s *Store, limit int32) {
	t.Helper()
	cfg := auditConfig(1)
	cfg.MaxMsgSize = limit
	if _, err := s.js.UpdateStream(context.Background(), cfg); err != nil {
		t.Fatalf("UpdateStream(AUDIT, MaxMsgSize %d) err = %v", limit, err)
	}
}

// storedRecords returns every stored record.
func storedRecords(t *testing.T, s *Store) []AuditRecord {
	t.Helper()
	var out []AuditRecord
	if err := s.AuditRecords(context.Background(), 1, 0, func(_ uint64, r AuditRecord) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatalf("AuditRecords err = %v", err)
	}
	return out
}

// bigRecord is a record of about 20 KiB (many items) that stays above
// 8 KiB compressed: its keys and digests are random.
func bigRecord(n int) *AuditRecord {
	r := auditRecord(n)
	r.Items = make([]AuditItem, 100)
	for i := range r.Items {
		r.Items[i] = AuditItem{Command: "KEY:GENERATE", Key: randomHex(75), ADSHA256: randomHex(32)}
	}
	return r
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestAuditorRefusedRecord: a record the stream refuses is not retried
// forever. Its batch is split, the records around it are stored, the
// refused one is replaced by a marker record saying what was dropped and
// why, the drop is counted, and the Auditor keeps working: in both modes.
func TestAuditorRefusedRecord(t *testing.T) {
	t.Parallel()
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync=%v", sync), func(t *testing.T) {
			t.Parallel()
			s := openTestStore(t, "")
			limitAuditMessages(t, s, 8<<10)
			a := s.NewAuditor(AuditConfig{Interval: time.Hour, Batch: 64, Sync: sync})
			var sl []*AuditSlot // batched: all three in one batch
			for range 3 {
				x, err := a.Reserve(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				sl = append(sl, x)
			}
			for i, r := range []*AuditRecord{auditRecord(0), bigRecord(1), auditRecord(2)} {
				if err := sl[i].Commit(context.Background(), r); err != nil {
					t.Fatalf("Commit #%d err = %v, want nil (a refused record is replaced, not failed)", i, err)
				}
			}
			if err := a.Record(context.Background(), auditRecord(3)); err != nil {
				t.Fatalf("Record after a refusal err = %v", err)
			}
			if err := a.Close(); err != nil {
				t.Fatalf("Close err = %v", err)
			}
			recs := storedRecords(t, s)
			if len(recs) != 4 {
				t.Fatalf("stored %d records, want 4 (3 as sent, 1 marker)", len(recs))
			}
			for i, r := range recs {
				if want := fmt.Sprintf("/v1/kms/r%d", i); r.Path != want {
					t.Errorf("record %d path = %s, want %s", i, r.Path, want)
				}
			}
			m := recs[1]
			if m.Dropped == nil || !strings.Contains(m.Dropped.Reason, "maximum") || m.Dropped.Bytes < 8<<10 ||
				len(m.Items) != 0 || len(m.Truncated) != 1 || m.Truncated[0] != (AuditCut{Field: "items", Len: 100}) ||
				m.Identity != "h1:test" || m.Status != 200 || !m.Time.Equal(auditRecord(1).Time) {
				t.Errorf("marker = %+v (dropped %+v), want the record's fields, its 100 items counted, and the refusal", m, m.Dropped)
			}
			if st := a.Stats(); st != (AuditStats{Stored: 3, Dropped: 1}) {
				t.Errorf("Stats = %+v, want 3 stored, 1 dropped", st)
			}
		})
	}
}

// TestAuditorRefusedMarker: when the stream refuses even the marker, the
// record is counted lost and the Auditor still does not hang.
func TestAuditorRefusedMarker(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	limitAuditMessages(t, s, 64)
	a := s.NewAuditor(AuditConfig{Sync: true, Batch: 2})
	for i := range 5 { // more than Batch: every slot comes back
		if err := a.Record(context.Background(), auditRecord(i)); err != nil {
			t.Fatalf("Record #%d err = %v", i, err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st != (AuditStats{Dropped: 5, Lost: 5}) {
		t.Errorf("Stats = %+v, want 5 dropped and lost", st)
	}
}

// TestAuditorReserveBusy: while every slot is taken, Reserve fails with
// ErrAuditBusy after AuditConfig.Wait (or when its context ends), and
// succeeds again once a slot comes back.
func TestAuditorReserveBusy(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	a := s.NewAuditor(AuditConfig{Interval: time.Hour, Batch: 2, Wait: 20 * time.Millisecond})
	defer a.Close()
	s1, err := a.Reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s2, err := a.Reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reserve(context.Background()); !errors.Is(err, ErrAuditBusy) {
		t.Fatalf("Reserve with every slot taken err = %v, want ErrAuditBusy", err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Reserve(cctx); !errors.Is(err, ErrAuditBusy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Reserve with a cancelled context err = %v, want ErrAuditBusy and context.Canceled", err)
	}
	s1.Release()
	s1.Release() // a second Release gives back nothing more
	s3, err := a.Reserve(context.Background())
	if err != nil {
		t.Fatalf("Reserve after a Release err = %v", err)
	}
	if _, err := a.Reserve(context.Background()); !errors.Is(err, ErrAuditBusy) {
		t.Fatalf("Reserve after a double Release err = %v, want ErrAuditBusy (one slot given back)", err)
	}
	if err := s2.Commit(context.Background(), auditRecord(2)); err != nil {
		t.Fatal(err)
	}
	if err := s2.Commit(context.Background(), auditRecord(2)); err == nil {
		t.Fatal("a second Commit of one slot err = nil")
	}
	s3.Release()
	if st := a.Stats(); st.Busy != 3 {
		t.Errorf("Stats.Busy = %d, want 3", st.Busy)
	}
}

// TestAuditorCommitIgnoresClient: a batched Commit accepts its record
// even when the client's context has ended (the slot was taken before),
// and Close stores it.
func TestAuditorCommitIgnoresClient(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	a := s.NewAuditor(AuditConfig{Interval: time.Hour, Batch: 4})
	sl, err := a.Reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	cancel() // the client went away while its request was served
	if err := sl.Commit(cctx, auditRecord(0)); err != nil {
		t.Fatalf("Commit with the client gone err = %v, want nil", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if p, _ := storedPaths(t, s); len(p) != 1 {
		t.Fatalf("stored %d records, want 1", len(p))
	}
}

// TestAuditorCloseWaitsForSlots: Close refuses new slots at once, waits
// for a slot already taken, stores its record, and reports nothing lost.
func TestAuditorCloseWaitsForSlots(t *testing.T) {
	t.Parallel()
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync=%v", sync), func(t *testing.T) {
			t.Parallel()
			s := openTestStore(t, "")
			a := s.NewAuditor(AuditConfig{Interval: time.Hour, Batch: 8, Sync: sync})
			for i := range 3 {
				if err := a.Record(context.Background(), auditRecord(i)); err != nil {
					t.Fatal(err)
				}
			}
			sl, err := a.Reserve(context.Background()) // a request being served
			if err != nil {
				t.Fatal(err)
			}
			closed := make(chan error, 1)
			go func() { closed <- a.Close() }()
			waitFor(t, 5*time.Second, func() bool {
				x, err := a.Reserve(context.Background())
				if err == nil {
					x.Release()
				}
				return errors.Is(err, ErrClosed)
			})
			select {
			case err := <-closed:
				t.Fatalf("Close returned (%v) while a slot was still taken", err)
			default:
			}
			if err := sl.Commit(context.Background(), auditRecord(3)); err != nil {
				t.Fatalf("Commit during Close err = %v, want nil", err)
			}
			if err := <-closed; err != nil {
				t.Fatalf("Close err = %v", err)
			}
			if p, _ := storedPaths(t, s); len(p) != 4 {
				t.Fatalf("stored %d records, want 4", len(p))
			}
			if st := a.Stats(); st != (AuditStats{Stored: 4}) {
				t.Errorf("Stats = %+v, want 4 stored, nothing lost", st)
			}
		})
	}
}
