package ledger

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestAppendRecordIsJSON: appendRecord writes exactly what encoding/json
// writes, for ordinary records and for strings that need escaping.
func TestAppendRecordIsJSON(t *testing.T) {
	awkward := "q\"b\\s/<>&\x00\x01\x1f\x7f\b\f\n\r\t é 😀 \u2028\u2029 \xff\xfe bad utf8 \xe2\x82"
	short := "<\u2028\xff\"é\n" // method and command are short
	cases := []AuditRecord{
		{},
		{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Node: "n", Method: "GET", Path: "/", Status: 200, Client: "c"},
		{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), Node: awkward, Identity: awkward, Enclave: awkward,
			Method: short, Path: awkward, Route: awkward, Status: 403, Error: awkward, Duration: -1, Client: awkward,
			Items: []AuditItem{{Command: short}, {Command: "KEY:DECRYPT", Key: awkward, Version: 4294967295, ADSHA256: awkward, KeyLen: 7}}},
		{Items: []AuditItem{}, Truncated: []AuditCut{}},
		{Path: "/p", Truncated: []AuditCut{{Field: "items", Len: 5000}}, Dropped: &AuditDrop{Bytes: 9, Reason: awkward}},
	}
	for i, r := range cases {
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRecord(nil, &r); string(got) != string(want) {
			t.Errorf("case %d: appendRecord =\n%s\nwant\n%s", i, got, want)
		}
	}
}

// checkBounded checks the line appendRecord wrote for r: at most
// MaxAuditRecord bytes, canonical encoding/json (decoding and encoding it
// again gives the same bytes), every string a prefix of r's, and every
// cut listed with its original size. It returns the decoded record.
func checkBounded(t *testing.T, r *AuditRecord) AuditRecord {
	t.Helper()
	line := appendRecord(nil, r)
	if len(line) > MaxAuditRecord {
		t.Fatalf("record line is %d bytes, want at most MaxAuditRecord = %d", len(line), MaxAuditRecord)
	}
	var got AuditRecord
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("record line is not JSON: %v", err)
	}
	// Invalid UTF-8 became U+FFFD, which encoding/json writes raw when
	// encoding it again: compare only lines without it.
	if again, _ := json.Marshal(&got); !strings.Contains(string(line), `\ufffd`) && string(again) != string(line) {
		t.Fatalf("record line is not what encoding/json writes for it:\n%.300s\nwant\n%.300s", line, again)
	}
	cuts := map[string]int{}
	for _, c := range got.Truncated {
		cuts[c.Field] = c.Len
	}
	for name, f := range map[string][2]string{"node": {got.Node, r.Node}, "identity": {got.Identity, r.Identity},
		"enclave": {got.Enclave, r.Enclave}, "method": {got.Method, r.Method}, "path": {got.Path, r.Path},
		"route": {got.Route, r.Route}, "error": {got.Error, r.Error}, "client": {got.Client, r.Client}} {
		stored, orig := f[0], f[1]
		if len(stored) == len(orig) && stored == orig {
			continue
		}
		if !strings.HasPrefix(asJSON(orig), stored) {
			t.Errorf("%s = %.40q…, not a prefix of the original", name, stored)
		}
		if stored != asJSON(orig) && cuts[name] != len(orig) {
			t.Errorf("%s cut from %d to %d bytes, but truncated says %v", name, len(orig), len(stored), got.Truncated)
		}
	}
	if len(got.Items) < len(r.Items) && cuts["items"] < len(r.Items) {
		t.Errorf("%d of %d items stored, but truncated says %v", len(got.Items), len(r.Items), got.Truncated)
	}
	for i, it := range got.Items {
		if orig := r.Items[i].Key; !strings.HasPrefix(asJSON(orig), it.Key) || (it.Key != asJSON(orig) && it.KeyLen != len(orig)) {
			t.Errorf("item %d key cut from %d bytes, key_len = %d", i, len(orig), it.KeyLen)
		}
	}
	return got
}

// TestAppendRecordBounded: whatever a client puts into a record (a path
// of 300,000 '<', each six bytes once escaped; a 1 MB key name; 100,000
// items), its line stays within MaxAuditRecord and says what was cut and
// how long it was.
func TestAppendRecordBounded(t *testing.T) {
	lt := strings.Repeat("<", 300_000)
	mb := strings.Repeat("<", 1_000_000)
	many := make([]AuditItem, 100_000)
	for i := range many {
		many[i] = AuditItem{Command: "KEY:STATUS", Key: "k" + strings.Repeat("&", 50), Version: 7, ADSHA256: strings.Repeat("a", 64)}
	}
	cases := map[string]AuditRecord{
		"path": {Method: "GET", Path: "/v1/admin/x/keys/" + lt, Items: []AuditItem{{Command: "GET /v1/admin/{enclave}/keys/{name}", Key: lt}}},
		"key":  {Method: "POST", Path: "/v1/kms/e", Items: []AuditItem{{Command: "KEY:STATUS", Key: mb}}},
		"every field": {Node: mb, Identity: mb, Enclave: mb, Method: mb, Path: mb, Route: mb, Error: mb, Client: mb,
			Items: []AuditItem{{Command: mb, Key: mb, ADSHA256: mb}}, Dropped: &AuditDrop{Reason: mb}},
		"items":         {Path: "/v1/kms/e", Items: many},
		"invalid utf-8": {Path: strings.Repeat("\xff", 100_000), Items: []AuditItem{{Command: "c", Key: strings.Repeat("\xe2\x82", 50_000)}}},
		"multibyte":     {Path: strings.Repeat("é😀\u2028", 50_000)},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			got := checkBounded(t, &r)
			if len(got.Truncated) == 0 && (len(got.Items) == 0 || got.Items[0].KeyLen == 0) {
				t.Fatalf("nothing listed as truncated: %.200s", appendRecord(nil, &got))
			}
		})
	}
	got := checkBounded(t, ptr(cases["path"]))
	if want := (AuditCut{Field: "path", Len: len(cases["path"].Path)}); got.Truncated[0] != want {
		t.Errorf("truncated = %v, want first %v", got.Truncated, want)
	}
	if it := got.Items[0]; it.KeyLen != len(lt) || !strings.HasPrefix(lt, it.Key) || it.Key == "" {
		t.Errorf("item = %.60q (key_len %d), want a prefix of the name and key_len %d", it.Key, it.KeyLen, len(lt))
	}
	got = checkBounded(t, ptr(cases["items"]))
	if len(got.Items) == 0 || got.Truncated[len(got.Truncated)-1] != (AuditCut{Field: "items", Len: len(many)}) {
		t.Errorf("%d items stored, truncated = %v, want some and items: %d", len(got.Items), got.Truncated, len(many))
	}
}

// asJSON is s as encoding/json stores it: each invalid byte is U+FFFD.
func asJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	json.Unmarshal(b, &out)
	return out
}

func ptr[T any](v T) *T { return &v }

func FuzzAppendRecord(f *testing.F) {
	f.Add("h1:x", "/v1/kms/e", "access denied", uint32(3), 1, 0)
	f.Add("h1:x", strings.Repeat("<", 3000), strings.Repeat("\u2028", 500), uint32(0), 3, 300)
	f.Fuzz(func(t *testing.T, s1, s2, s3 string, v uint32, items, repeat int) {
		items, repeat = min(max(items, 0), 2000), min(max(repeat, 0), 500)
		big := strings.Repeat(s2, repeat)
		r := AuditRecord{Identity: s1, Path: s2 + big, Error: s3, Items: make([]AuditItem, items)}
		for i := range r.Items {
			r.Items[i] = AuditItem{Command: s3, Key: s1 + big, Version: v}
		}
		got := checkBounded(t, &r)
		if len(got.Truncated) == 0 {
			want, _ := json.Marshal(&r)
			if line := appendRecord(nil, &r); string(line) != string(want) {
				t.Fatalf("appendRecord = %s, want %s", line, want)
			}
		}
	})
}
