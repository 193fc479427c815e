package ledger

import (
	"encoding/json"
	"errors"
	"testing"
)

func FuzzDecodeEvent(f *testing.F) {
	good, _ := encodeEvent(testEvent(KeySubject("enc", "k"), "c1"))
	for _, s := range []string{string(good), "", "{}", "null", "not json", `{"type":1}`, `{"time":"yesterday"}`, `{"payload":{"a":[1,2]}}`} {
		f.Add([]byte(s))
	}
	// The stored forms of a key creation: a key frame and an S2 frame.
	created := mustEncode(f, keyCreatedEvent(f, "e1", "k", "c4f9545dadd78423444ce8c3f0892a39"))
	f.Add(deflateEvent(created, ""))
	f.Add(append([]byte(eventMagic), eventCodec().Encode(nil, created)...))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := decodeEvent(body, "", 7)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decodeEvent(%q) err = %v, want ErrMalformed", body, err)
			}
			return
		}
		if ev.Seq != 7 {
			t.Fatalf("decodeEvent Seq = %d, want 7", ev.Seq)
		}
		// What decodes re-encodes to an envelope that decodes the same.
		again, err := json.Marshal(ev)
		if err != nil {
			return // e.g. a time outside the JSON range
		}
		ev2, err := decodeEvent(again, "", 7)
		if err != nil {
			t.Fatalf("re-decode of %q err = %v", again, err)
		}
		if ev2.Type != ev.Type || ev2.ID != ev.ID || !ev2.Time.Equal(ev.Time) || ev2.Actor != ev.Actor ||
			ev2.Enclave != ev.Enclave || ev2.Aggregate != ev.Aggregate || ev2.CommandID != ev.CommandID {
			t.Fatalf("round trip %+v -> %+v", ev, ev2)
		}
	})
}

func TestEncodeEventIsTheEnvelope(t *testing.T) {
	t.Parallel()
	ev := testEvent(KeySubject("enc", "k"), "c1")
	ev.Seq = 42
	body, err := encodeEvent(ev)
	if err != nil {
		t.Fatalf("encodeEvent err = %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"type", "id", "time", "actor", "enclave", "aggregate", "command_id", "payload"} {
		if _, ok := m[k]; !ok {
			t.Errorf("envelope lacks %q: %s", k, body)
		}
	}
	if len(m) != 8 {
		t.Errorf("envelope has %d fields, want 8 (Seq is not encoded): %s", len(m), body)
	}
}
