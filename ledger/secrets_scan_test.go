package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestScanSecrets: every stored material after a sequence, in order, with
// its reference and time; erased ones (the last included) are skipped and
// the scan still ends; a scan past the end reads nothing.
func TestScanSecrets(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	var refs []string
	for i := range 10 {
		ref := AttemptSecretRef("enc", fmt.Sprintf("k%d", i), 1, fmt.Sprintf("a%d", i))
		if err := s.PutSecret(ctx, ref, []byte("sealed")); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	for _, i := range []int{3, 9} { // one inside, and the last
		if err := s.EraseSecret(ctx, refs[i]); err != nil {
			t.Fatal(err)
		}
	}
	scan := func(from uint64) ([]SecretEntry, uint64) {
		t.Helper()
		var got []SecretEntry
		last, err := s.ScanSecrets(ctx, from, func(e SecretEntry) error { got = append(got, e); return nil })
		if err != nil {
			t.Fatalf("ScanSecrets(%d) err = %v", from, err)
		}
		return got, last
	}
	got, last := scan(0)
	end, _ := s.SecretsLastSeq(ctx)
	if last != end || end < 10 {
		t.Errorf("ScanSecrets(0) last = %d, want the stream's last sequence %d", last, end)
	}
	var gotRefs []string
	for i, e := range got {
		gotRefs = append(gotRefs, e.Ref)
		if i > 0 && e.Seq <= got[i-1].Seq {
			t.Errorf("entry %d: seq %d after %d, want ascending", i, e.Seq, got[i-1].Seq)
		}
		if e.Stored.Before(before) || e.Stored.After(time.Now()) {
			t.Errorf("entry %s stored at %v, want about now", e.Ref, e.Stored)
		}
	}
	want := slices.Delete(slices.Delete(slices.Clone(refs), 9, 10), 3, 4)
	if !slices.Equal(gotRefs, want) {
		t.Errorf("ScanSecrets(0) refs = %v, want %v (erased ones skipped)", gotRefs, want)
	}
	if tail, _ := scan(got[5].Seq); len(tail) != 3 || tail[0].Ref != got[5].Ref {
		t.Errorf("ScanSecrets(from the 6th) = %d entries, want the last 3 live ones", len(tail))
	}
	if none, last := scan(end + 1); len(none) != 0 || last != end {
		t.Errorf("ScanSecrets(past the end) = %d entries, last %d; want none and %d", len(none), last, end)
	}
	stop := errors.New("stop")
	last, err := s.ScanSecrets(ctx, 0, func(e SecretEntry) error {
		if e.Ref == refs[2] {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || last != got[1].Seq {
		t.Errorf("ScanSecrets stopped by fn = (%d, %v), want (%d, stop)", last, err, got[1].Seq)
	}
}
