package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
)

// writeAuditRuns writes runs of n records each, one batch per run, with
// AUDIT compression on or off per run, then a checkpoint; it returns
// the paths written in order.
func writeAuditRuns(t *testing.T, s *Store, n int, compress ...bool) []string {
	t.Helper()
	var paths []string
	for run, c := range compress {
		s.compress = c
		a := s.NewAuditor(AuditConfig{Batch: n})
		for i := range n {
			r := auditRecord(i)
			r.Path = fmt.Sprintf("/v1/kms/run%d/r%d", run, i)
			if err := a.Record(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, r.Path)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Checkpoint(context.Background(), testSigner()); err != nil {
		t.Fatal(err)
	}
	return paths
}

// TestAuditBatchesCompressed: a single node stores its audit batches
// compressed (a fraction of the lines' bytes), and a stream that holds
// both plain batches (written before, or by a cluster) and compressed
// ones reads back every record in order, verifies, and exports with its
// records disclosed and verifiable.
func TestAuditBatchesCompressed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	if !s.compress {
		t.Fatal("a single node does not compress its audit batches")
	}
	want := writeAuditRuns(t, s, 200, false, true, false, true)
	got, _ := storedPaths(t, s)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records read back: %d, want the %d written, in order", len(got), len(want))
	}
	s.Close()

	var types []string
	var plain, stored int
	for _, m := range rawMessages(t, dir, auditStream) {
		if len(types) == 0 || types[len(types)-1] != m.Type { // a run may take several batches
			types = append(types, m.Type)
		}
		if m.Type == TypeAuditBatchZ {
			b, err := m.Plain()
			if err != nil {
				t.Fatalf("seq %d: Plain err = %v", m.Seq, err)
			}
			plain, stored = plain+len(b), stored+len(m.Body)
		}
	}
	if fmt.Sprint(types) != fmt.Sprint([]string{TypeAuditBatch, TypeAuditBatchZ, TypeAuditBatch, TypeAuditBatchZ}) {
		t.Fatalf("AUDIT message types = %v", types)
	}
	if stored*4 > plain {
		t.Errorf("compressed batches hold %d bytes for %d of records, want less than a quarter", stored, plain)
	}
	if _, err := verifyDir(t, dir, VerifyOptions{Keys: testKeys()}); err != nil {
		t.Fatalf("Verify err = %v", err)
	}
	out, _, records := export(t, dir, ExportFilter{})
	if records != len(want) {
		t.Errorf("Export disclosed %d records, want %d", records, len(want))
	}
	if _, err := VerifyExport(bytes.NewReader(out), VerifyOptions{Keys: testKeys()}); err != nil {
		t.Fatalf("VerifyExport err = %v", err)
	}
}

// TestAuditFrameRefused: a compressed batch that is not a zstd frame, is
// cut, or decompresses past the bound (a frame of 2 MiB of zeros is a
// few hundred bytes) is malformed, not read; its leaf is not the leaf
// of any lines, so a chain check reports it.
func TestAuditFrameRefused(t *testing.T) {
	t.Parallel()
	lines := []byte("{\"path\":\"/a\"}\n{\"path\":\"/b\"}\n")
	good := deflateAudit(lines)
	bomb := deflateAudit(make([]byte, 2<<20))
	if len(bomb) > 4<<10 {
		t.Fatalf("the bomb is %d bytes; want a small frame", len(bomb))
	}
	ok := RawMessage{Stream: auditStream, Seq: 7, Subject: auditSubject, Type: TypeAuditBatchZ, MsgID: "m", Body: good}
	if b, err := ok.Plain(); err != nil || !bytes.Equal(b, lines) {
		t.Fatalf("Plain(good) = %q, %v", b, err)
	}
	plainLeaf := leafHash(7, auditSubject, TypeAuditBatchZ, "m", bodyDigest(lines))
	if ok.Leaf() != plainLeaf {
		t.Fatal("the leaf of a compressed batch is not over its lines")
	}
	for what, body := range map[string][]byte{
		"not a frame":    lines,
		"cut":            good[:len(good)-3],
		"past the bound": bomb,
		"empty":          nil,
	} {
		m := ok
		m.Body = body
		if _, err := m.Plain(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Plain err = %v, want ErrMalformed", what, err)
		}
		if m.Leaf() == plainLeaf {
			t.Errorf("%s: the leaf is the lines' leaf", what)
		}
	}
	// The bound itself: 1 MiB decompresses, one byte more does not.
	for n, wantErr := range map[int]bool{auditMaxPlain: false, auditMaxPlain + 1: true} {
		_, err := inflateAudit(deflateAudit(bytes.Repeat([]byte("x"), n)))
		if (err != nil) != wantErr {
			t.Errorf("%d bytes: inflate err = %v, want error %v", n, err, wantErr)
		}
	}
}
