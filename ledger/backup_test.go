package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// backupOf writes a backup of the store in dir (opened, then closed).
func backupOf(tb testing.TB, dir string) []byte {
	tb.Helper()
	s := openTestStore(tb, dir)
	var buf bytes.Buffer
	if _, err := s.Backup(context.Background(), &buf, nil); err != nil {
		tb.Fatalf("Backup err = %v", err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func openBackupBytes(b []byte, format string) (*BackupFile, error) {
	return OpenBackup(bytes.NewReader(b), int64(len(b)), format)
}

// secretEvent is an event that records the secret reference ref.
func secretEvent(subject, cmd, ref string) Event {
	ev := testEvent(subject, cmd)
	ev.Payload = json.RawMessage(fmt.Sprintf(`{"secret_ref":%q}`, ref))
	return ev
}

// buildWithSecrets is buildChained plus three key versions with sealed
// material (the second erased), each recorded by an event, and a final
// checkpoint. It returns the LEDGER sequences of the three events.
func buildWithSecrets(tb testing.TB, dir string) []uint64 {
	tb.Helper()
	buildChained(tb, dir, 9)
	ctx := context.Background()
	s := openTestStore(tb, dir)
	var seqs []uint64
	for i := 1; i <= 3; i++ {
		ref := AttemptSecretRef("enc", fmt.Sprintf("s%d", i), 1, "a")
		if err := s.PutSecret(ctx, ref, []byte(fmt.Sprintf("sealed-%d", i))); err != nil {
			tb.Fatal(err)
		}
		seq, _, err := s.Append(ctx, secretEvent(KeySubject("enc", fmt.Sprintf("s%d", i)), fmt.Sprintf("c%d", i), ref), Expect{Any: true})
		if err != nil {
			tb.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	if err := s.EraseSecret(ctx, AttemptSecretRef("enc", "s2", 1, "a")); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.Checkpoint(ctx, testSigner()); err != nil {
		tb.Fatal(err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return seqs
}

// secretsOf returns every secret of the store in dir by reference.
func secretsOf(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	s, err := Open(context.Background(), Config{Dir: dir, ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	refs, err := s.ListSecrets(context.Background(), ">")
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range refs {
		b, err := s.GetSecret(context.Background(), r)
		if err != nil {
			tb.Fatal(err)
		}
		out[r] = string(b)
	}
	return out
}

// restoreInto restores b into a new dir and returns it.
func restoreInto(tb testing.TB, b []byte, opts RestoreOptions) (string, *RestoreReport) {
	tb.Helper()
	bf, err := openBackupBytes(b, BackupFormat)
	if err != nil {
		tb.Fatalf("OpenBackup err = %v", err)
	}
	if _, err := bf.Verify(testKeys()); err != nil {
		tb.Fatalf("Verify err = %v", err)
	}
	dir := tb.TempDir()
	s := openTestStore(tb, dir)
	rep, err := s.Restore(context.Background(), bf, opts)
	if err != nil {
		tb.Fatalf("Restore err = %v", err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return dir, rep
}

func TestBackupRestoreIdentical(t *testing.T) {
	src := t.TempDir()
	buildWithSecrets(t, src)
	b := backupOf(t, src)
	dst, rep := restoreInto(t, b, RestoreOptions{})
	if rep.Rest != (BackupStats{}) {
		t.Errorf("Restore without a cut set aside %+v, want nothing", rep.Rest)
	}
	for _, stream := range []string{ledgerStream, auditStream} {
		want, got := rawMessages(t, src, stream), rawMessages(t, dst, stream)
		if len(want) == 0 || !slices.EqualFunc(want, got, func(a, b RawMessage) bool {
			return a.Seq == b.Seq && a.Subject == b.Subject && a.Type == b.Type && a.MsgID == b.MsgID && a.Prev == b.Prev && bytes.Equal(a.Body, b.Body)
		}) {
			t.Errorf("%s: restored %d messages differ from the %d backed up", stream, len(got), len(want))
		}
	}
	wantSecrets, gotSecrets := secretsOf(t, src), secretsOf(t, dst)
	if len(wantSecrets) != 2 || fmt.Sprint(wantSecrets) != fmt.Sprint(gotSecrets) {
		t.Errorf("secrets: restored %v, want %v (the erased one stays erased)", gotSecrets, wantSecrets)
	}
	vr, err := verifyDir(t, dst, VerifyOptions{Keys: testKeys()})
	if err != nil {
		t.Fatalf("Verify(restored) err = %v, want nil", err)
	}
	if vr.Witness == 0 || vr.Ledger.SignedThrough != vr.Ledger.Last {
		t.Errorf("Verify(restored) = %+v, want a witness and everything signed", vr)
	}
	// The restored store takes appends that chain on.
	s := openTestStore(t, dst)
	mustAppend(t, s, KeySubject("enc", "after"), 1)
	if _, err := s.Checkpoint(context.Background(), testSigner()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := verifyDir(t, dst, VerifyOptions{Keys: testKeys()}); err != nil {
		t.Errorf("Verify(restored + 1 event) err = %v, want nil", err)
	}
}

func TestBackupRefusesChangedByte(t *testing.T) {
	src := t.TempDir()
	buildChained(t, src, 6)
	b := backupOf(t, src)
	member1 := len(b) - trailerSize
	positions := map[string]int{
		"gzip magic": 0, "gzip time": 4, "gzip extra flags": 8, "gzip OS": 9,
		"deflate start": 10, "middle": member1 / 2, "last deflate byte": member1 - 9,
		"gzip CRC": member1 - 8, "gzip size": member1 - 1,
		"trailer header": member1 + 3, "trailer digest": member1 + 50, "last byte": len(b) - 1,
	}
	for name, at := range positions {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			c := bytes.Clone(b)
			c[at] ^= x
			if _, err := openBackupBytes(c, BackupFormat); !errors.Is(err, ErrBadBackup) {
				t.Errorf("%s (byte %d ^ %#x): OpenBackup err = %v, want ErrBadBackup", name, at, x, err)
			}
		}
	}
	for name, c := range map[string][]byte{
		"cut short":      b[:len(b)-1],
		"no trailer":     b[:member1],
		"extended":       append(bytes.Clone(b), 0),
		"trailer twice":  append(bytes.Clone(b), b[member1:]...),
		"empty":          nil,
		"only a trailer": b[member1:],
	} {
		if _, err := openBackupBytes(c, BackupFormat); !errors.Is(err, ErrBadBackup) {
			t.Errorf("%s: OpenBackup err = %v, want ErrBadBackup", name, err)
		}
	}
	if _, err := openBackupBytes(b, RestFormat); !errors.Is(err, ErrBadBackup) {
		t.Errorf("OpenBackup(backup as a rest file) err = %v, want ErrBadBackup", err)
	}
}

// rewrite decodes a backup, lets edit change its lines, and writes a new
// backup with a valid container around them.
func rewrite(tb testing.TB, b []byte, edit func(lines []map[string]any) []map[string]any) []byte {
	tb.Helper()
	bf, err := openBackupBytes(b, BackupFormat)
	if err != nil {
		tb.Fatal(err)
	}
	var lines []map[string]any
	err = bf.scan(func(h *BackupHeader) error {
		lines = append(lines, toMap(tb, h))
		return nil
	}, func(m *BackupMsg) error {
		lines = append(lines, toMap(tb, m))
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	lines = edit(lines)
	var out bytes.Buffer
	w := newBackupWriter(&out)
	counts := map[string]uint64{}
	for _, l := range lines {
		if s, ok := l["stream"].(string); ok {
			counts[s]++
		}
		if err := w.line(l); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.line(backupEnd{Kind: lineEnd, Ledger: counts[ledgerStream], Audit: counts[auditStream], Secrets: counts[secretsStream]}); err != nil {
		tb.Fatal(err)
	}
	if err := w.close(); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

func toMap(tb testing.TB, v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestBackupForgedContentRefused(t *testing.T) {
	src := t.TempDir()
	buildChained(t, src, 8)
	b := backupOf(t, src)
	if _, err := openBackupBytes(rewrite(t, b, func(l []map[string]any) []map[string]any { return l }), BackupFormat); err != nil {
		t.Fatalf("a re-written unchanged backup: OpenBackup err = %v, want nil", err)
	}
	cases := map[string]struct {
		edit func([]map[string]any) []map[string]any
		want error
	}{
		"LEDGER body changed": {func(l []map[string]any) []map[string]any {
			l[3]["body"] = []byte(`{"forged":true}`)
			return l
		}, ErrTampered},
		"AUDIT body changed": {func(l []map[string]any) []map[string]any {
			for _, x := range l {
				if x["stream"] == auditStream {
					x["body"] = []byte("{}\n")
					break
				}
			}
			return l
		}, ErrTampered},
		"LEDGER message dropped": {func(l []map[string]any) []map[string]any { return slices.Delete(l, 2, 3) }, ErrBadBackup},
		"LEDGER messages swapped": {func(l []map[string]any) []map[string]any {
			l[2], l[3] = l[3], l[2]
			return l
		}, ErrBadBackup},
		"unknown field": {func(l []map[string]any) []map[string]any {
			l[1]["extra"] = 1
			return l
		}, ErrBadBackup},
		"header head changed": {func(l []map[string]any) []map[string]any {
			l[0]["ledger"] = 1
			return l
		}, ErrBadBackup},
		"chain value in header": {func(l []map[string]any) []map[string]any {
			l[0]["ledger_chain"] = Sum{1}.String()
			return l
		}, ErrTampered},
		"format": {func(l []map[string]any) []map[string]any {
			l[0]["format"] = "kmsledger-backup/v0"
			return l
		}, ErrBadBackup},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := rewrite(t, b, tc.edit)
			bf, err := openBackupBytes(c, BackupFormat)
			if err == nil {
				_, err = bf.Verify(testKeys())
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("OpenBackup+Verify err = %v, want %v", err, tc.want)
			}
		})
	}
	// An untrusted key: the checkpoints do not verify.
	bf, err := openBackupBytes(b, BackupFormat)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bf.Verify(nil); !errors.Is(err, ErrTampered) {
		t.Errorf("Verify(no trusted key) err = %v, want ErrTampered", err)
	}
}

func TestRestorePointInTime(t *testing.T) {
	src := t.TempDir()
	seqs := buildWithSecrets(t, src)
	b := backupOf(t, src)
	// Between the first and the second secret's event.
	dst, rep := func() (string, *RestoreReport) {
		var rest bytes.Buffer
		dir, rep := restoreInto(t, b, RestoreOptions{UntilSeq: seqs[0], Rest: &rest})
		rf, err := openBackupBytes(rest.Bytes(), RestFormat)
		if err != nil {
			t.Fatalf("OpenBackup(rest) err = %v", err)
		}
		st, err := rf.Scan(func(m *BackupMsg) error {
			if m.Stream == ledgerStream && m.Seq <= seqs[0] {
				t.Errorf("rest file holds LEDGER seq %d, at or before the cut", m.Seq)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Scan(rest) err = %v", err)
		}
		if st != rep.Rest || st.Ledger == 0 || st.Secrets != 1 {
			t.Errorf("rest file holds %+v, report says %+v; want the later events and the third secret", st, rep.Rest)
		}
		return dir, rep
	}()
	if rep.LedgerLast != seqs[0] {
		t.Errorf("restored LEDGER up to %d, want %d", rep.LedgerLast, seqs[0])
	}
	got := secretsOf(t, dst)
	if _, ok := got[AttemptSecretRef("enc", "s1", 1, "a")]; !ok || len(got) != 1 {
		t.Errorf("restored secrets %v, want only s1's", got)
	}
	if _, err := verifyDir(t, dst, VerifyOptions{Keys: testKeys()}); err != nil {
		t.Errorf("Verify(point-in-time restore) err = %v, want nil", err)
	}
	if n := len(rawMessages(t, dst, ledgerStream)); uint64(n) != seqs[0] {
		t.Errorf("restored %d LEDGER messages, want %d", n, seqs[0])
	}
	// A cut with nowhere to put the rest is refused.
	bf, _ := openBackupBytes(b, BackupFormat)
	s := openTestStore(t, "")
	if _, err := s.Restore(context.Background(), bf, RestoreOptions{UntilSeq: 2}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Restore(cut, no rest file) err = %v, want ErrInvalid", err)
	}
}

func TestRestoreRefusesNonEmptyStore(t *testing.T) {
	src := t.TempDir()
	buildChained(t, src, 3)
	b := backupOf(t, src)
	bf, err := openBackupBytes(b, BackupFormat)
	if err != nil {
		t.Fatal(err)
	}
	s := openTestStore(t, "")
	mustAppend(t, s, KeySubject("enc", "x"), 1)
	if _, err := s.Restore(context.Background(), bf, RestoreOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Restore(non-empty store) err = %v, want ErrInvalid", err)
	}
	if last, err := streamLast(context.Background(), s.ledger); err != nil || last != 1 {
		t.Errorf("LEDGER ends at %d (err %v) after a refused restore, want 1", last, err)
	}
}

// TestBackupDuringWrites: a backup taken while events and audit records
// are appended is a consistent snapshot: it restores and verifies, and
// the restored LEDGER is a prefix of the source's.
func TestBackupDuringWrites(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	buildChained(t, src, 4)
	s := openTestStore(t, src)
	a := s.NewAuditor(AuditConfig{Sync: true})
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, _, err := s.Append(ctx, testEvent(KeySubject("enc", "busy"), fmt.Sprint("w", i)), Expect{Any: true}); err != nil {
				done <- err
				return
			}
			if err := a.Record(ctx, &AuditRecord{Identity: "h1:w", Method: "POST", Path: "/v1/kms/enc", Status: 200}); err != nil {
				done <- err
				return
			}
		}
	}()
	mustAppend(t, s, KeySubject("enc", "before"), 3) // the writer is running
	var buf, signed bytes.Buffer
	st, err := s.Backup(ctx, &buf, nil)
	if err == nil {
		_, err = s.BackupSigned(ctx, &signed, testSigner(), nil)
	}
	close(stop)
	if werr := <-done; werr != nil {
		t.Fatal(werr)
	}
	if err != nil {
		t.Fatalf("Backup err = %v", err)
	}
	a.Close()
	if _, err := s.Checkpoint(ctx, testSigner()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Unsigned tail: no key is needed for what follows the last checkpoint.
	dst, rep := restoreInto(t, buf.Bytes(), RestoreOptions{})
	if rep.Restored != st {
		t.Errorf("restored %+v, backed up %+v", rep.Restored, st)
	}
	if _, err := verifyDir(t, dst, VerifyOptions{Keys: testKeys()}); err != nil {
		t.Errorf("Verify(restored) err = %v", err)
	}
	// BackupSigned stops at the checkpoint it appended: all of it is signed.
	bf, err := openBackupBytes(signed.Bytes(), BackupFormat)
	if err != nil {
		t.Fatal(err)
	}
	vr, err := bf.Verify(testKeys())
	if err != nil || vr.Ledger.SignedThrough != vr.Ledger.Last || vr.Audit.SignedThrough != vr.Audit.Last || vr.Audit.Last == 0 {
		t.Errorf("Verify(BackupSigned) = %+v, %v; want every LEDGER and AUDIT message signed", vr, err)
	}
	full, part := rawMessages(t, src, ledgerStream), rawMessages(t, dst, ledgerStream)
	if len(part) >= len(full) || !slices.EqualFunc(part, full[:len(part)], func(a, b RawMessage) bool { return bytes.Equal(a.Body, b.Body) && a.Prev == b.Prev }) {
		t.Errorf("restored LEDGER (%d) is not a strict prefix of the source's (%d)", len(part), len(full))
	}
}
