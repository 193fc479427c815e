package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestCompressedBlocks: once the server has filled a LEDGER block it
// compresses it (store.go, compressed); the block is then much smaller
// than the events it holds, a read-only Open checks its records
// (decodeBlock), Verify and a reopen read it, and a changed byte inside
// it is refused before the server starts.
func TestCompressedBlocks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	// Reading a message of a compressed block first decompresses the
	// whole block (8 MB), which takes seconds under the race detector:
	// more than the client's default request timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	blk1 := filepath.Join(msgsDir(dir, ledgerStream), "1.blk")
	plain := fillFirstBlock(ctx, t, s, dir)
	b := waitCompressed(t, blk1)
	if len(b) > plain/4 {
		t.Errorf("compressed 1.blk is %d bytes for about %d bytes of payloads, want well under a quarter", len(b), plain)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := Open(ctx, Config{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open with a compressed block: %v", err)
	}
	if _, err := ro.Verify(ctx, VerifyOptions{}); err != nil {
		t.Errorf("Verify with a compressed block: %v (%v)", err, errors.Unwrap(err))
	}
	ro.Close()
	s = openTestStore(t, dir)
	if _, _, err := s.Append(ctx, testEvent(KeySubject("enc", "after"), "after"), Expect{}); err != nil {
		t.Fatalf("Append after reopen: %v", err)
	}
	if _, err := s.Verify(ctx, VerifyOptions{}); err != nil {
		t.Errorf("Verify after reopen: %v (%v)", err, errors.Unwrap(err))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// One changed byte in the compressed stream: refused by the block
	// check (S2 checksums every chunk, and the records are checked).
	if b, err = os.ReadFile(blk1); err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(blk1, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ro, err = Open(ctx, Config{Dir: dir, ReadOnly: true})
	if !errors.Is(err, ErrCorruptBlock) {
		if err == nil {
			ro.Close()
		}
		t.Fatalf("read-only Open of a changed compressed block: err = %v, want ErrCorruptBlock", err)
	}
}

// fillFirstBlock appends events of about 64 KB until LEDGER has a second
// block (some 130 fill the first 8 MB one) and returns the bytes of
// their payloads.
func fillFirstBlock(ctx context.Context, t *testing.T, s *Store, dir string) (plain int) {
	t.Helper()
	pad := strings.Repeat("key material is never here; ", 64<<10/29)
	for i := 0; ; i++ {
		ev := testEvent(KeySubject("enc", fmt.Sprintf("k%d", i)), fmt.Sprintf("c%d", i))
		ev.Payload = json.RawMessage(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, pad))
		if _, _, err := s.Append(ctx, ev, Expect{}); err != nil {
			t.Fatalf("Append(%d) err = %v", i, err)
		}
		plain += len(ev.Payload)
		if _, err := os.Stat(filepath.Join(msgsDir(dir, ledgerStream), "2.blk")); err == nil {
			return plain
		}
		if i > 1000 {
			t.Fatalf("no second block after %d events of %d bytes", i, len(ev.Payload))
		}
	}
}

// waitCompressed waits until the server has compressed the full block
// blk (in the background) and returns its bytes.
func waitCompressed(t *testing.T, blk string) []byte {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(blk)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(b, []byte(blkCompressed)) {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not compressed within 30 s (%d bytes, starts %q)", blk, len(b), b[:min(len(b), 4)])
		}
	}
}

// TestDecodeBlockRefuses: a compression header that does not hold what
// it says is a corrupt block, and a plain block is returned unchanged.
func TestDecodeBlockRefuses(t *testing.T) {
	t.Parallel()
	plain := []byte("\x30\x00\x00\x00not compressed")
	if got, err := decodeBlock(plain); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("decodeBlock(plain) = (%q, %v), want it unchanged", got, err)
	}
	for _, b := range []string{
		blkCompressed,                                  // no size
		blkCompressed + "\x05",                         // no trailer
		blkCompressed + "\x05garbage!",                 // not S2
		blkCompressed + "\xff\xff\xff\xff\x7f12345678", // too large
	} {
		if _, err := decodeBlock([]byte(b)); err == nil {
			t.Errorf("decodeBlock(%q) err = nil, want an error", b)
		}
	}
}

// TestOpenCompressesExistingStreams: a data dir whose LEDGER and AUDIT
// were created without compression (before it was set) opens, keeps its
// events and gets the compression from then on.
func TestOpenCompressesExistingStreams(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s := openTestStore(t, dir)
	if _, _, err := s.Append(ctx, testEvent(KeySubject("enc", "old"), "old"), Expect{}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []jetstream.Stream{s.ledger, s.audit} {
		cfg := st.CachedInfo().Config
		cfg.Compression = jetstream.NoCompression
		if _, err := s.js.UpdateStream(ctx, cfg); err != nil {
			t.Fatalf("UpdateStream(%s, no compression): %v", cfg.Name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	for _, st := range []jetstream.Stream{s.ledger, s.audit} {
		info, err := st.Info(ctx)
		if err != nil || info.Config.Compression != jetstream.S2Compression {
			t.Errorf("after reopen: %s compression = %v (%v), want s2", st.CachedInfo().Config.Name, info.Config.Compression, err)
		}
	}
	if ev, ok, err := s.Lookup(ctx, KeySubject("enc", "old"), "old"); err != nil || !ok || ev.ID != "ev-old" {
		t.Errorf("Lookup(old event) = (%s, %v, %v), want ev-old", ev.ID, ok, err)
	}
	if _, _, err := s.Append(ctx, testEvent(KeySubject("enc", "new"), "new"), Expect{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, VerifyOptions{}); err != nil {
		t.Errorf("Verify: %v", err)
	}
}
