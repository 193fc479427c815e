package ledger

import (
	"encoding/json"
	"testing"
	"time"
)

// TestAppendRecordIsJSON: appendRecord writes exactly what encoding/json
// writes, for ordinary records and for strings that need escaping.
func TestAppendRecordIsJSON(t *testing.T) {
	awkward := "q\"b\\s/<>&\x00\x01\x1f\x7f\b\f\n\r\t é 😀 \u2028\u2029 \xff\xfe bad utf8 \xe2\x82"
	cases := []AuditRecord{
		{},
		{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Node: "n", Method: "GET", Path: "/", Status: 200, Client: "c"},
		{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), Node: awkward, Identity: awkward, Enclave: awkward,
			Method: awkward, Path: awkward, Route: awkward, Status: 403, Error: awkward, Duration: -1, Client: awkward,
			Items: []AuditItem{{Command: awkward}, {Command: "KEY:DECRYPT", Key: awkward, Version: 4294967295, ADSHA256: awkward}}},
		{Items: []AuditItem{}},
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

func FuzzAppendRecord(f *testing.F) {
	f.Add("h1:x", "/v1/kms/e", "access denied", uint32(3))
	f.Fuzz(func(t *testing.T, s1, s2, s3 string, v uint32) {
		r := AuditRecord{Identity: s1, Path: s2, Error: s3, Items: []AuditItem{{Command: s3, Key: s1, Version: v}}}
		want, _ := json.Marshal(&r)
		if got := appendRecord(nil, &r); string(got) != string(want) {
			t.Fatalf("appendRecord = %s, want %s", got, want)
		}
	})
}
