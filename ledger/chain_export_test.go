package ledger

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// export exports dir with f.
func export(t *testing.T, dir string, f ExportFilter) (out []byte, events, records int) {
	t.Helper()
	s, err := Open(context.Background(), Config{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var b bytes.Buffer
	events, records, err = s.Export(context.Background(), &b, f)
	if err != nil {
		t.Fatalf("Export err = %v", err)
	}
	return b.Bytes(), events, records
}

func TestExportVerifies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	buildChained(t, dir, 9) // events at 03:04:05 in enclave enc; record i at 03:04:0i
	at := func(sec int) time.Time { return time.Date(2026, 1, 2, 3, 4, sec, 0, time.UTC) }
	cases := []struct {
		name                string
		f                   ExportFilter
		wantEvents, wantRec int
	}{
		{"everything", ExportFilter{}, 9 + 3, 9},                   // events and checkpoints
		{"other enclave", ExportFilter{Enclave: "other"}, 3, 0},    // checkpoints only
		{"enclave", ExportFilter{Enclave: "enc"}, 12, 9},           //
		{"records since 5s", ExportFilter{Since: at(6)}, 3, 4},     // records 6..9
		{"window", ExportFilter{Since: at(2), Until: at(4)}, 3, 2}, // records 2, 3; no event
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, events, records := export(t, dir, tc.f)
			if events != tc.wantEvents || records != tc.wantRec {
				t.Errorf("Export disclosed %d events, %d records; want %d, %d", events, records, tc.wantEvents, tc.wantRec)
			}
			rep, err := VerifyExport(bytes.NewReader(out), VerifyOptions{Keys: testKeys()})
			if err != nil {
				t.Fatalf("VerifyExport err = %v", err)
			}
			if rep.Checkpoints != 3 || rep.Ledger.Last != 12 || rep.Audit.Last != 9 || rep.Audit.SignedThrough != 9 {
				t.Errorf("VerifyExport report = %+v", rep)
			}
			if bytes.Contains(out, []byte(`sealed`)) {
				t.Error("the export discloses sealed material")
			}
		})
	}
}

// TestVerifyExportDetects edits an export and checks that VerifyExport
// names the first bad sequence.
func TestVerifyExportDetects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	buildChained(t, dir, 9)
	out, _, _ := export(t, dir, ExportFilter{Since: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)})
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, maxExportLine)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	// lines[0] is the header, lines[1..12] LEDGER seq 1..12, lines[13..21] AUDIT seq 1..9.
	edit := func(f func([]string) []string) []byte {
		return []byte(strings.Join(f(append([]string(nil), lines...)), "\n") + "\n")
	}
	replace := func(i int, old, new string) func([]string) []string {
		return func(l []string) []string { l[i] = strings.Replace(l[i], old, new, 1); return l }
	}
	cases := []struct {
		name    string
		export  []byte
		stream  string
		seq     uint64
		invalid bool // not an export at all
	}{
		{"dropped line", edit(func(l []string) []string { return append(l[:3], l[4:]...) }), ledgerStream, 3, false},
		{"swapped lines", edit(func(l []string) []string { l[6], l[7] = l[7], l[6]; return l }), ledgerStream, 6, false},
		{"changed record", edit(replace(21, `"status":200`, `"status":201`)), auditStream, 9, false},
		{"changed leaf", edit(replace(2, `"leaf":"`, `"leaf":"0`)), ledgerStream, 2, false},
		{"truncated", edit(func(l []string) []string { return l[:20] }), auditStream, 8, false},
		{"no header", edit(func(l []string) []string { return l[1:] }), "", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyExport(bytes.NewReader(tc.export), VerifyOptions{Keys: testKeys()})
			if tc.invalid {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("VerifyExport err = %v, want ErrInvalid", err)
				}
				return
			}
			var te *TamperError
			if !errors.As(err, &te) || te.Stream != tc.stream || te.Seq != tc.seq {
				t.Fatalf("VerifyExport err = %v, want TamperError at %s seq %d", err, tc.stream, tc.seq)
			}
		})
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32)).Public().(ed25519.PublicKey)
	if _, err := VerifyExport(bytes.NewReader(out), VerifyOptions{Keys: map[string]ed25519.PublicKey{KeyID(other): other}}); !errors.Is(err, ErrTampered) {
		t.Fatalf("VerifyExport with another public key err = %v, want ErrTampered", err)
	}
	var l ExportLine
	if err := json.Unmarshal([]byte(lines[21]), &l); err != nil || l.Kind != "audit" || len(l.Lines) != 1 || l.Lines[0].Record == nil {
		t.Fatalf("last AUDIT line = %s, want one disclosed record", lines[21])
	}
}
