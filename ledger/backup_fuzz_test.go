package ledger

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// smallBackup is a valid backup of an empty ledger with one LEDGER event
// and one secret, built without a store.
func smallBackup(tb testing.TB) []byte {
	var buf bytes.Buffer
	w := newBackupWriter(&buf)
	ev := RawMessage{Stream: ledgerStream, Seq: 1, Subject: KeySubject("enc", "k"), Type: "test.happened.v1", MsgID: "m1", Body: []byte(`{"n":1}`)}
	lines := []any{
		BackupHeader{Kind: lineHeader, Format: BackupFormat, CreatedAt: time.Unix(0, 0).UTC(), Ledger: 1,
			LedgerChain: chainNext(Sum{}, ev.Leaf()).String()},
		&BackupMsg{Kind: lineMsg, Stream: ledgerStream, Seq: 1, Subject: ev.Subject, Type: ev.Type, MsgID: ev.MsgID, Body: ev.Body},
		&BackupMsg{Kind: lineMsg, Stream: secretsStream, Seq: 3, Subject: secretsPrefix + "enc.k.1.a", Body: []byte("sealed")},
		backupEnd{Kind: lineEnd, Ledger: 1, Secrets: 1},
	}
	for _, l := range lines {
		if err := w.line(l); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzOpenBackup: no input makes the backup reader panic; an input that
// passes the trailer check is scanned and verified like any backup.
func FuzzOpenBackup(f *testing.F) {
	good := smallBackup(f)
	if bf, err := openBackupBytes(good, BackupFormat); err != nil {
		f.Fatalf("seed: OpenBackup err = %v", err)
	} else if _, err := bf.Verify(nil); err != nil {
		f.Fatalf("seed: Verify err = %v", err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		bf, err := openBackupBytes(data, BackupFormat)
		if err != nil {
			return
		}
		bf.Scan(func(*BackupMsg) error { return nil })
		bf.Verify(nil)
	})
}

// wrap puts raw member-1 content (JSON lines) in a valid container.
func wrap(tb testing.TB, content []byte) []byte {
	var buf bytes.Buffer
	w := newBackupWriter(&buf)
	if _, err := w.buf.Write(content); err != nil {
		tb.Fatal(err)
	}
	if err := w.close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzBackupLines: whatever lines a backup holds, inside a valid
// container, reading and verifying them does not panic, and a backup
// whose lines pass Scan restores only what Verify accepts.
func FuzzBackupLines(f *testing.F) {
	good := smallBackup(f)
	bf, _ := openBackupBytes(good, BackupFormat)
	var content bytes.Buffer
	bf.scan(func(h *BackupHeader) error { return jsonLine(&content, h) }, func(m *BackupMsg) error { return jsonLine(&content, m) })
	jsonLine(&content, backupEnd{Kind: lineEnd, Ledger: 1, Secrets: 1})
	f.Add(content.Bytes())
	f.Add([]byte(`{"kind":"header","format":"kmsledger-backup/v1","ledger":0,"audit":0}` + "\n" + `{"kind":"end"}` + "\n"))
	f.Fuzz(func(t *testing.T, lines []byte) {
		bf, err := openBackupBytes(wrap(t, lines), BackupFormat)
		if err != nil {
			return
		}
		bf.Scan(func(*BackupMsg) error { return nil })
		bf.Verify(nil)
	})
}

func jsonLine(b *bytes.Buffer, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Write(append(j, '\n'))
	return nil
}
