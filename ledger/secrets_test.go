package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

func TestSecretsPutGetList(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	refs := []string{SecretRef("enc", "a", 1), SecretRef("enc", "a", 2), SecretRef("enc", "b", 1), SecretRef("other", "a", 1)}
	for _, ref := range refs {
		if err := s.PutSecret(ctx, ref, []byte("sealed:"+ref)); err != nil {
			t.Fatalf("PutSecret(%s) err = %v", ref, err)
		}
	}
	for _, ref := range refs {
		got, err := s.GetSecret(ctx, ref)
		if err != nil || string(got) != "sealed:"+ref {
			t.Errorf("GetSecret(%s) = (%q, %v), want (%q, nil)", ref, got, err, "sealed:"+ref)
		}
	}
	if err := s.PutSecret(ctx, refs[0], []byte("other")); !errors.Is(err, ErrSecretExists) {
		t.Errorf("second PutSecret(%s) err = %v, want ErrSecretExists", refs[0], err)
	}
	if got, _ := s.GetSecret(ctx, refs[0]); string(got) != "sealed:"+refs[0] {
		t.Errorf("GetSecret after refused put = %q, want the original", got)
	}
	if _, err := s.GetSecret(ctx, "enc.none.1"); !errors.Is(err, ErrSecretNotFound) {
		t.Errorf("GetSecret(missing) err = %v, want ErrSecretNotFound", err)
	}
	lists := []struct {
		filter string
		want   []string
	}{
		{"", []string{"enc.a.1", "enc.a.2", "enc.b.1", "other.a.1"}},
		{"enc.>", []string{"enc.a.1", "enc.a.2", "enc.b.1"}},
		{"enc.a.*", []string{"enc.a.1", "enc.a.2"}},
		{"*.a.1", []string{"enc.a.1", "other.a.1"}},
		{"enc.b.1", []string{"enc.b.1"}},
		{"nobody.>", []string{}},
	}
	for _, tt := range lists {
		got, err := s.ListSecrets(ctx, tt.filter)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ListSecrets(%q) = (%q, %v), want (%q, nil)", tt.filter, got, err, tt.want)
		}
	}
}

func TestSecretsInvalidRefs(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	for _, ref := range []string{"", "enc..1", ".enc", "enc.", "enc.*.1", "enc.>", "a b.c", "enc.k.1\n"} {
		if err := s.PutSecret(ctx, ref, []byte("x")); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutSecret(%q) err = %v, want ErrInvalid", ref, err)
		}
		if _, err := s.GetSecret(ctx, ref); !errors.Is(err, ErrInvalid) {
			t.Errorf("GetSecret(%q) err = %v, want ErrInvalid", ref, err)
		}
	}
	for _, ref := range []string{"", "enc..1", "enc.>.1", "a b.>"} {
		if err := s.EraseSecret(ctx, ref); !errors.Is(err, ErrInvalid) {
			t.Errorf("EraseSecret(%q) err = %v, want ErrInvalid", ref, err)
		}
	}
}

func TestSecretsRacingPutsOneWins(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() { errs[i] = s.PutSecret(ctx, "enc.k.1", []byte{byte(i)}) })
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, ErrSecretExists):
			t.Errorf("writer %d err = %v, want nil or ErrSecretExists", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d puts succeeded, want 1", wins)
	}
}

func TestSecretsErase(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	for _, ref := range []string{"enc.a.1", "enc.a.2", "enc.b.1", "other.a.1"} {
		if err := s.PutSecret(ctx, ref, []byte(ref)); err != nil {
			t.Fatalf("PutSecret(%s) err = %v", ref, err)
		}
	}
	steps := []struct {
		erase string
		left  []string
	}{
		{"enc.a.2", []string{"enc.a.1", "enc.b.1", "other.a.1"}},
		{"enc.a.2", []string{"enc.a.1", "enc.b.1", "other.a.1"}}, // idempotent
		{"enc.a.*", []string{"enc.b.1", "other.a.1"}},
		{"enc.>", []string{"other.a.1"}},
		{"never.put.1", []string{"other.a.1"}},
	}
	for _, st := range steps {
		if err := s.EraseSecret(ctx, st.erase); err != nil {
			t.Fatalf("EraseSecret(%s) err = %v, want nil", st.erase, err)
		}
		got, err := s.ListSecrets(ctx, "")
		if err != nil || !slices.Equal(got, st.left) {
			t.Fatalf("after EraseSecret(%s): ListSecrets = (%q, %v), want %q", st.erase, got, err, st.left)
		}
	}
	if _, err := s.GetSecret(ctx, "enc.a.1"); !errors.Is(err, ErrSecretNotFound) {
		t.Errorf("GetSecret(erased) err = %v, want ErrSecretNotFound", err)
	}
}

// windowLen is the length of the blob fragments the erasure scan looks
// for. 16 random bytes occur by chance in a few MB of files with
// probability ~2^-100.
const windowLen = 16

// scanForBlob fails the test if any file under dir contains any
// windowLen-byte fragment of blob.
func scanForBlob(t *testing.T, dir string, blob []byte, when string) {
	t.Helper()
	path, off, files, err := findFragment(dir, blob)
	switch {
	case err != nil:
		t.Fatalf("%s: scan %s: %v", when, dir, err)
	case files == 0:
		t.Fatalf("%s: scanned no files under %s", when, dir)
	case path != "":
		t.Errorf("%s: %s holds blob bytes at offset %d", when, path, off)
	}
}

// findFragment returns the first file under dir holding a windowLen-byte
// fragment of blob, the fragment's offset, and how many files it read.
func findFragment(dir string, blob []byte) (path string, off, files int, err error) {
	frags := make(map[string]struct{}, len(blob))
	for i := 0; i+windowLen <= len(blob); i++ {
		frags[string(blob[i:i+windowLen])] = struct{}{}
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path != "" {
			return err
		}
		files++
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i := 0; i+windowLen <= len(data); i++ {
			if _, ok := frags[string(data[i:i+windowLen])]; ok {
				path, off = p, i
				return nil
			}
		}
		return nil
	})
	return path, off, files, err
}

// TestScanDetectsPlainDelete is the control of the erasure scan: a plain
// (non-erasing) JetStream delete leaves the bytes in the block file, and
// the scan must see them.
func TestScanDetectsPlainDelete(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s := openTestStore(t, dir)
	blob := make([]byte, 1024)
	rand.Read(blob)
	for i, ref := range []string{"enc.k.1", "enc.k.2"} {
		if err := s.PutSecret(ctx, ref, append([]byte{byte(i)}, blob[i*512:(i+1)*512]...)); err != nil {
			t.Fatalf("PutSecret err = %v", err)
		}
	}
	if err := s.secrets.DeleteMsg(ctx, 1); err != nil {
		t.Fatalf("DeleteMsg err = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close err = %v", err)
	}
	if path, _, _, err := findFragment(dir, blob[:512]); err != nil || path == "" {
		t.Fatalf("scan after plain delete = (%q, %v), want the blob found", path, err)
	}
}

// blobPresent reports whether blob occurs verbatim in a file under dir.
func blobPresent(t *testing.T, dir string, blob []byte) bool {
	t.Helper()
	found := false
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if data, err := os.ReadFile(path); err == nil && bytes.Contains(data, blob) {
				found = true
			}
		}
		return nil
	})
	return found
}

// putAroundVictim puts before random secrets, a random blob at
// victim.k.1, events ledger events and after random secrets; it returns
// the other secrets and the victim's blob.
func putAroundVictim(t *testing.T, s *Store, before, after, events int) (kept [][]byte, blob []byte) {
	t.Helper()
	ctx := context.Background()
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	put := func(ref string, b []byte) {
		t.Helper()
		if err := s.PutSecret(ctx, ref, b); err != nil {
			t.Fatalf("PutSecret(%s) err = %v", ref, err)
		}
	}
	for i := range before {
		kept = append(kept, random(512))
		put(SecretRef("enc", "before", uint32(i)), kept[len(kept)-1])
	}
	blob = random(1024)
	put("victim.k.1", blob)
	mustAppend(t, s, KeySubject("enc", "k"), events)
	for i := range after {
		kept = append(kept, random(512))
		put(SecretRef("enc", "after", uint32(i)), kept[len(kept)-1])
	}
	return kept, blob
}

func TestEraseLeavesNoBytes(t *testing.T) {
	t.Parallel()
	// Each case erases one blob among others, in a different position of
	// the message block, then scans every file under Dir: at once, after
	// Close (index and state files are written) and after a reopen.
	cases := []struct {
		name   string
		before int    // secrets put before the victim
		after  int    // secrets put after it
		events int    // ledger events appended meanwhile
		erase  string // reference or filter to erase
	}{
		{name: "only message", erase: "victim.k.1"},
		{name: "first of several", after: 3, events: 2, erase: "victim.k.1"},
		{name: "middle", before: 3, after: 3, events: 5, erase: "victim.k.1"},
		{name: "last", before: 3, erase: "victim.k.1"},
		{name: "by wildcard", before: 2, after: 2, erase: "victim.>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ctx := context.Background()
			s := openTestStore(t, dir)
			kept, blob := putAroundVictim(t, s, tc.before, tc.after, tc.events)
			if !blobPresent(t, dir, blob) {
				t.Fatalf("blob not found on disk before erase: the scan would prove nothing")
			}

			if err := s.EraseSecret(ctx, tc.erase); err != nil {
				t.Fatalf("EraseSecret(%s) err = %v", tc.erase, err)
			}
			scanForBlob(t, dir, blob, "after erase")
			if err := s.Close(); err != nil {
				t.Fatalf("Close err = %v", err)
			}
			scanForBlob(t, dir, blob, "after close")

			s = openTestStore(t, dir)
			if _, err := s.GetSecret(ctx, "victim.k.1"); !errors.Is(err, ErrSecretNotFound) {
				t.Errorf("GetSecret(victim) after reopen err = %v, want ErrSecretNotFound", err)
			}
			refs, err := s.ListSecrets(ctx, "")
			if err != nil || len(refs) != len(kept) {
				t.Errorf("ListSecrets after reopen = (%q, %v), want %d refs", refs, err, len(kept))
			}
			for _, b := range kept {
				if !blobPresent(t, dir, b) {
					t.Errorf("a secret that was not erased is gone from disk")
				}
			}
			if head, err := s.Head(ctx); err != nil || head != uint64(tc.events) {
				t.Errorf("LEDGER head after reopen = (%d, %v), want %d", head, err, tc.events)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("second Close err = %v", err)
			}
			scanForBlob(t, dir, blob, "after reopen and close")
		})
	}
}

// TestEraseAcrossBlocks erases messages in sealed (non-last) blocks,
// enough of them to make the file store compact a block, and scans for
// every erased blob. SECRETS is re-created with a MaxBytes small enough
// that the server picks its minimum block size (32 kB).
func TestEraseAcrossBlocks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s := openTestStore(t, dir)
	if err := s.js.DeleteStream(ctx, secretsStream); err != nil {
		t.Fatal(err)
	}
	cfg := secretsConfig(1)
	cfg.MaxBytes = 120_000
	var err error
	if s.secrets, err = s.js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if s.secretsBlocks, err = newBlockWatch(dir, secretsStream, true, nil); err != nil {
		t.Fatal(err)
	}

	const n = 40
	blobs := make([][]byte, n)
	for i := range blobs {
		blobs[i] = make([]byte, 2000)
		rand.Read(blobs[i])
		if err := s.PutSecret(ctx, SecretRef("enc", "k", uint32(i)), blobs[i]); err != nil {
			t.Fatalf("PutSecret #%d err = %v", i, err)
		}
	}
	blocks, _ := filepath.Glob(filepath.Join(msgsDir(dir, secretsStream), "*.blk"))
	if len(blocks) < 3 {
		t.Fatalf("SECRETS has %d blocks, want >= 3 for this test", len(blocks))
	}
	if s.secretsBlocks.last != uint64(len(blocks)) {
		t.Errorf("block watch saw %d blocks, want %d", s.secretsBlocks.last, len(blocks))
	}
	// Erase all but one of the first 15 (compaction of the first block)
	// and one in the middle.
	erased := map[int]bool{20: true}
	for i := range 15 {
		if i != 7 {
			erased[i] = true
		}
	}
	for i := range erased {
		if err := s.EraseSecret(ctx, SecretRef("enc", "k", uint32(i))); err != nil {
			t.Fatalf("EraseSecret #%d err = %v", i, err)
		}
	}
	check := func(when string) {
		t.Helper()
		for i, b := range blobs {
			if erased[i] {
				scanForBlob(t, dir, b, fmt.Sprintf("%s, blob #%d", when, i))
			} else if !blobPresent(t, dir, b) {
				t.Errorf("%s: kept blob #%d is gone from disk", when, i)
			}
		}
	}
	check("after erase")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("after close")
	s = openTestStore(t, dir)
	for i, b := range blobs {
		got, err := s.GetSecret(ctx, SecretRef("enc", "k", uint32(i)))
		switch {
		case erased[i] && !errors.Is(err, ErrSecretNotFound):
			t.Errorf("GetSecret(erased #%d) err = %v, want ErrSecretNotFound", i, err)
		case !erased[i] && (err != nil || !bytes.Equal(got, b)):
			t.Errorf("GetSecret(kept #%d) = (%d bytes, %v), want the blob", i, len(got), err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("after reopen and close")
}
