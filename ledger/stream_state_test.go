package ledger

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// appendKeys appends n key creations k<from>… to a store opened on dir
// and closes it cleanly (the server then writes every stream's state).
func appendKeys(t *testing.T, dir string, from, n int) {
	t.Helper()
	s, err := Open(context.Background(), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < from+n; i++ {
		name := fmt.Sprintf("k%d", i)
		if _, _, err := s.Append(context.Background(), testEvent(KeySubject("enc", name), name), Expect{}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutSecret(context.Background(), SecretRef("enc", name, 1), []byte("sealed "+name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDropStaleState: after a clean stop every stream's state file names
// its newest block's last record, and dropStaleState keeps it (the
// server's fast path). A state file from before later writes (what
// kill -9 leaves) is removed, and the store then opens with every
// message. Files it cannot judge are left to the server.
func TestDropStaleState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	appendKeys(t, dir, 0, 20)
	old := map[string][]byte{}
	for _, stream := range []string{ledgerStream, secretsStream, auditStream} {
		fn := filepath.Join(msgsDir(dir, stream), streamStateFile)
		b, err := os.ReadFile(fn)
		if err != nil {
			t.Fatalf("%s: no state file after a clean stop: %v", stream, err)
		}
		old[stream] = b
		if dropped, err := dropStaleState(dir, stream); err != nil || dropped {
			t.Fatalf("%s after a clean stop: dropped %v, err %v; want the state kept", stream, dropped, err)
		}
		if _, err := os.Stat(fn); err != nil {
			t.Fatalf("%s: state file gone: %v", stream, err)
		}
	}

	appendKeys(t, dir, 20, 20)
	for _, stream := range []string{ledgerStream, secretsStream} {
		fn := filepath.Join(msgsDir(dir, stream), streamStateFile)
		if err := os.WriteFile(fn, old[stream], 0o600); err != nil {
			t.Fatal(err)
		}
		if dropped, err := dropStaleState(dir, stream); err != nil || !dropped {
			t.Fatalf("%s with the state of 20 messages ago: dropped %v, err %v; want it removed", stream, dropped, err)
		}
		if _, err := os.Stat(fn); !os.IsNotExist(err) {
			t.Fatalf("%s: stale state file still there: %v", stream, err)
		}
	}
	s := openTestStore(t, dir)
	if head, err := s.Head(context.Background()); err != nil || head != 40 {
		t.Fatalf("Head after the rebuild = %d, %v; want 40", head, err)
	}
	if got, err := s.GetSecret(context.Background(), SecretRef("enc", "k39", 1)); err != nil || string(got) != "sealed k39" {
		t.Fatalf("the last secret after the rebuild: %q, %v", got, err)
	}
	if _, err := s.Verify(context.Background(), VerifyOptions{}); err != nil {
		t.Fatalf("Verify after the rebuild: %v", err)
	}
}

// TestDropStaleStateLeavesWhatItCannotJudge: no stream directory, no
// state file, a state file too short to be one, a stream without
// blocks: nothing is removed and nothing fails.
func TestDropStaleStateLeavesWhatItCannotJudge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if dropped, err := dropStaleState(dir, ledgerStream); err != nil || dropped {
		t.Fatalf("no stream: dropped %v, err %v", dropped, err)
	}
	msgs := msgsDir(dir, ledgerStream)
	if err := os.MkdirAll(msgs, 0o700); err != nil {
		t.Fatal(err)
	}
	if dropped, err := dropStaleState(dir, ledgerStream); err != nil || dropped {
		t.Fatalf("no state file: dropped %v, err %v", dropped, err)
	}
	fn := filepath.Join(msgs, streamStateFile)
	for _, b := range [][]byte{[]byte("short"), make([]byte, 64)} {
		if err := os.WriteFile(fn, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if dropped, err := dropStaleState(dir, ledgerStream); err != nil || dropped {
			t.Fatalf("state file of %d bytes without blocks: dropped %v, err %v", len(b), dropped, err)
		}
	}
	// A newest block shorter than a checksum reads as zeros, as the
	// server reads it: a state naming zeros is kept.
	if err := os.WriteFile(filepath.Join(msgs, "1.blk"), []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if dropped, err := dropStaleState(dir, ledgerStream); err != nil || dropped {
		t.Fatalf("zeros against a short block: dropped %v, err %v", dropped, err)
	}
	// A state file that cannot be read is an error, and stays.
	if err := os.Remove(fn); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(fn, 0o700); err != nil {
		t.Fatal(err)
	}
	if dropped, err := dropStaleState(dir, ledgerStream); err == nil || dropped {
		t.Fatalf("a directory for a state file: dropped %v, err %v; want an error and nothing removed", dropped, err)
	}
	if err := os.Remove(fn); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fn, make([]byte, 64), 0o600); err != nil {
		t.Fatal(err)
	}
	// The newest block is the highest index, not the last name listed.
	if err := os.WriteFile(filepath.Join(msgs, "10.blk"), []byte("0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	if dropped, err := dropStaleState(dir, ledgerStream); err != nil || !dropped {
		t.Fatalf("zeros against block 10's checksum: dropped %v, err %v; want removed", dropped, err)
	}
}
