package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// goldenBodies returns every golden event body (testdata/events).
func goldenBodies(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "events", "*.json"))
	if err != nil || len(files) < len(eventTypes) {
		tb.Fatalf("golden events: %d files, %v", len(files), err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, bytes.TrimSpace(b))
	}
	return out
}

// fastSeeds are bodies on both sides of every check of the fast path.
var fastSeeds = []string{
	`{"type":"t","id":"i","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"","aggregate":"ledger.e.key.k","command_id":"c","payload":{}}`,
	`{"type":"t","id":"i","time":"2026-01-02T03:04:05.123456789+02:00","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{"name":"k","version":1}}`,
	`{"type":"t","id":"i","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{"a":[1,{"b":null}],"c":-1.5e3}}`,
	`{"type":"t","id":"i","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":null}`,
	`{"type":"t","id":"i","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{} }`,
	`{"type":"t","id":"i","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{}} `,
	`{"type":"t", "id":"i","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{}}`,
	`{"id":"i","type":"t","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{}}`,
	`{"TYPE":"t","id":"i","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{}}`,
	`{"type":"t\u0041","id":"i","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{}}`,
	`{"type":"t","id":"é","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{}}`,
	"{\"type\":\"t\",\"id\":\"\xff\",\"time\":\"2026-01-02T03:04:05Z\",\"actor\":\"a\",\"enclave\":\"e\",\"aggregate\":\"g\",\"command_id\":\"c\",\"payload\":{}}",
	`{"type":"t","id":"i","time":"2026-13-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{}}`,
	`{"type":"t","id":"i","time":"2026-01-02 03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{}}`,
	`{"type":"t","id":"i","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{"a":}}`,
	`{"type":"t","id":"i","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{},"extra":1}`,
	`{"type":"t","id":"i","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{}}}`,
	`{"type":"t","id":"i","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{"a":"b"}`,
	`{"type":1,"id":"i","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{}}`,
	`{"type":"t","type":"u","id":"i","time":"2026-01-02T03:04:05Z","actor":"a","enclave":"e","aggregate":"g","command_id":"c","payload":{}}`,
	`{"type":"t"}`, `{}`, `null`, ``, `{`, `}`, `[]`,
}

// FuzzFastEvent: whatever the body, decodeEvent gives what json.Unmarshal
// gives (value, or an error), and its fast path never takes a body that
// json.Unmarshal refuses or reads otherwise.
func FuzzFastEvent(f *testing.F) {
	for _, b := range goldenBodies(f) {
		f.Add(b)
	}
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var want Event
		werr := json.Unmarshal(body, &want)
		if ev, ok := fastEvent(body); ok && (werr != nil || !reflect.DeepEqual(ev, want)) {
			t.Fatalf("fastEvent(%q) = %+v, json.Unmarshal = %+v, %v", body, ev, want, werr)
		}
		got, err := decodeEvent(body, "", 7)
		if (err != nil) != (werr != nil) {
			t.Fatalf("decodeEvent(%q) err = %v, json.Unmarshal err = %v", body, err, werr)
		}
		want.Seq = 7
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeEvent(%q) = %+v, json.Unmarshal = %+v", body, got, want)
		}
	})
}

// keyCreatedSeeds are key.created.v1 payloads on both sides of every
// check of the fast path.
var keyCreatedSeeds = []string{
	`{"name":"k","version":1,"type":"AES256","secret_ref":"e.k.1.a","fingerprint":"ff"}`,
	`{"name":"k","version":0,"type":"","secret_ref":"","fingerprint":""}`,
	`{"name":"k","version":4294967295,"type":"AES256","secret_ref":"r","fingerprint":"f"}`,
	`{"name":"k","version":4294967296,"type":"AES256","secret_ref":"r","fingerprint":"f"}`,
	`{"name":"k","version":01,"type":"AES256","secret_ref":"r","fingerprint":"f"}`,
	`{"name":"k","version":-1,"type":"AES256","secret_ref":"r","fingerprint":"f"}`,
	`{"name":"k","version":1.0,"type":"AES256","secret_ref":"r","fingerprint":"f"}`,
	`{"name":"k","version":"1","type":"AES256","secret_ref":"r","fingerprint":"f"}`,
	`{"name":"k","version":1,"type":"AES256","secret_ref":"r","fingerprint":"f","source":{"kind":"api"}}`,
	`{"name":"k","version":1,"type":"AES256","secret_ref":"r"}`,
	`{"name":"k\n","version":1,"type":"AES256","secret_ref":"r","fingerprint":"f"}`,
	`{"name":"k\"","version":1,"type":"AES256","secret_ref":"r","fingerprint":"f"}`,
	`{"Name":"k","version":1,"type":"AES256","secret_ref":"r","fingerprint":"f"}`,
	`{"name":"k","version":1,"type":"AES256","secret_ref":"r","fingerprint":"f"} `,
	`{"name":null,"version":1,"type":"AES256","secret_ref":"r","fingerprint":"f"}`,
	`null`, `{}`, ``,
}

// FuzzFastKeyCreated: whatever the payload and whatever the value decoded
// into, DecodePayload leaves a KeyCreated as json.Unmarshal does, with
// the same error or none; its fast path takes only what json.Unmarshal
// takes and reads the same way.
func FuzzFastKeyCreated(f *testing.F) {
	for _, s := range keyCreatedSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, withSource bool) {
		start := func() KeyCreated {
			k := KeyCreated{Name: "old", Version: 9, Type: "ChaCha20", SecretRef: "old-ref", Fingerprint: "old-fp"}
			if withSource {
				k.Source = &ImportSource{Kind: "kes-fs", Name: "old"}
			}
			return k
		}
		want, got, fast := start(), start(), start()
		werr := json.Unmarshal(b, &want)
		if fastKeyCreated(b, &fast) && (werr != nil || !reflect.DeepEqual(fast, want)) {
			t.Fatalf("fastKeyCreated(%q) = %+v, json.Unmarshal = %+v, %v", b, fast, want, werr)
		}
		err := DecodePayload(b, &got)
		if (err != nil) != (werr != nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodePayload(%q) = %+v, %v; json.Unmarshal = %+v, %v", b, got, err, want, werr)
		}
	})
}

// FuzzFlatObject: what flatObject takes is valid JSON.
func FuzzFlatObject(f *testing.F) {
	for _, s := range append(keyCreatedSeeds, `{"a":"b","c":0}`, `{"a":1,}`, `{"a"}`, `{"a":1 }`, `{,}`, `{}`, `}`, `{`) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if flatObject(b) && !json.Valid(b) {
			t.Fatalf("flatObject(%q) = true, not valid JSON", b)
		}
	})
}

// TestFastPathTakesMarshalOutput: the fast paths are taken for what
// json.Marshal writes (else they would only cost time), for every event
// type's golden payload and for events of printable ASCII strings. A fast
// path that refused them would still decode them right, so only this
// test fails.
func TestFastPathTakesMarshalOutput(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 6, 17, 0, 0, 123456789, time.UTC)
	for i, golden := range goldenBodies(t) {
		var g Event
		if err := json.Unmarshal(golden, &g); err != nil {
			t.Fatal(err)
		}
		ev := Event{Type: g.Type, ID: fmt.Sprintf("%032x", i), Time: at.Add(time.Duration(i) * time.Hour).In(time.FixedZone("", 3600*(i%5))),
			Actor: "h1:" + strings.Repeat("Ab-_", i%11), Enclave: []string{"", "e", "tenant-7"}[i%3],
			Aggregate: "ledger.e.key.k" + fmt.Sprint(i), CommandID: "c !#$%'()*+,-./:;=?@[]^`{|}~" + fmt.Sprint(i), Payload: g.Payload}
		body, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		fast, ok := fastEvent(body)
		var want Event
		if err := json.Unmarshal(body, &want); err != nil || !ok || !reflect.DeepEqual(fast, want) {
			t.Errorf("%s: fastEvent(%s) = %+v, %v; json.Unmarshal = %+v, %v", g.Type, body, fast, ok, want, err)
		}
		if g.Type != TypeKeyCreated {
			continue
		}
		var k, wantK KeyCreated
		if err := json.Unmarshal(g.Payload, &wantK); err != nil {
			t.Fatal(err)
		}
		p, _ := json.Marshal(wantK)
		if !fastKeyCreated(p, &k) || !reflect.DeepEqual(k, wantK) {
			t.Errorf("fastKeyCreated(%s) = %+v, want %+v", p, k, wantK)
		}
	}
}
