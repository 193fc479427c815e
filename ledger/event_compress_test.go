package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// keyCreatedEvent is a key creation as the commands layer writes one.
func keyCreatedEvent(t testing.TB, enclave, name, id string) Event {
	t.Helper()
	ref := fmt.Sprintf("%s.%s.1.%s", enclave, name, id)
	payload, err := json.Marshal(KeyCreated{Name: name, Version: 1, Type: "AES256", SecretRef: ref,
		Fingerprint: "4cfef02392ad6c48beb60debdfdc778eaf9f15adf7201d39aa46f7c104f6be6b"})
	if err != nil {
		t.Fatal(err)
	}
	return Event{Type: TypeKeyCreated, ID: id, Time: time.Date(2026, 12, 7, 0, 54, 44, 132902485, time.UTC),
		Actor: "h1:U8tBqi-VuTXahl45NO6q-BMhtwkeePbbGEXQTyKDYNY", Enclave: enclave,
		Aggregate: KeySubject(enclave, name), CommandID: "0c753b8944f15973d3e842235079c615", Payload: payload}
}

// TestEventsStoredCompressed: a single node stores every appended event
// (alone or in a batch) as a frame well under its JSON; Replay, Lookup,
// the chain check and an export give back the JSON; a ledger whose older
// events are JSON (written before, or by a cluster) reads on alike.
func TestEventsStoredCompressed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	want := appendMixed(t, s)
	var got []Event
	if _, err := s.Replay(context.Background(), 1, func(ev Event) error {
		if ev.Type == TypeKeyCreated {
			ev.Seq = 0
			got = append(got, ev)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Replay gave %d key creations, want %d", len(got), len(want))
	}
	for i := range want {
		a, _ := json.Marshal(got[i])
		b, _ := json.Marshal(want[i])
		if !bytes.Equal(a, b) {
			t.Errorf("event %d read back as %s, want %s", i, a, b)
		}
	}
	if ev, ok, err := s.Lookup(context.Background(), want[2].Aggregate, want[2].CommandID); err != nil || !ok || ev.ID != want[2].ID {
		t.Errorf("Lookup of a compressed event = %v, %v, %v", ev.ID, ok, err)
	}
	s.Close()

	frames, stored, plain := 0, 0, 0
	for _, m := range rawMessages(t, dir, ledgerStream) {
		if m.Type != TypeKeyCreated {
			continue
		}
		body, err := m.Plain()
		if err != nil || !json.Valid(body) {
			t.Fatalf("seq %d: Plain = %q, %v", m.Seq, body, err)
		}
		if isEventFrame(m.Body) {
			frames, stored, plain = frames+1, stored+len(m.Body), plain+len(body)
		}
	}
	if frames != len(want)-1 {
		t.Fatalf("%d events stored as frames, want all %d written with compression on", frames, len(want)-1)
	}
	if stored*3 > plain*2 {
		t.Errorf("frames hold %d bytes for %d of JSON, want at most two thirds", stored, plain)
	}
	checkCompressedHistory(t, dir, len(want))
}

// appendMixed appends a key creation as JSON, then with compression
// three alone, a batch of two and a signing key event; it returns the
// key creations.
func appendMixed(t *testing.T, s *Store) (want []Event) {
	t.Helper()
	ctx := context.Background()
	appendOne := func(ev Event) {
		if _, _, err := s.Append(ctx, ev, Expect{Any: true}); err != nil {
			t.Fatal(err)
		}
		if ev.Type == TypeKeyCreated {
			want = append(want, ev)
		}
	}
	s.compress, s.chains.ledger.linked = false, false // as an earlier version or a cluster node wrote them
	appendOne(keyCreatedEvent(t, "e1", "plain", "c4f9545dadd78423444ce8c3f0892a30"))
	s.compress, s.chains.ledger.linked = true, true
	for i := range 3 {
		appendOne(keyCreatedEvent(t, "e1", fmt.Sprintf("bench-%d", i), fmt.Sprintf("c4f9545dadd78423444ce8c3f0892a3%d", i+1)))
	}
	batch := []Event{keyCreatedEvent(t, "e2", "b1", "d5cdd2e071ae02cf4f7bb571159cd2f1"),
		keyCreatedEvent(t, "e2", "b2", "d5cdd2e071ae02cf4f7bb571159cd2f2")}
	batch[1].CommandID = "another"
	if _, _, err := s.AppendBatch(ctx, batch, []Expect{{Seq: 0}, {Seq: 0}}); err != nil {
		t.Fatal(err)
	}
	want = append(want, batch...)
	sk, _ := json.Marshal(SigningKey{KeyID: "kid-compressed", Algorithm: SigningAlgorithm})
	appendOne(Event{Type: TypeSigningKey, ID: "sk", Time: time.Now().UTC(), Actor: "h1:test",
		Aggregate: "ledger._sys.signing.kid-compressed", CommandID: "sk", Payload: sk})
	return want
}

// checkCompressedHistory verifies dir (its signing key event seen), and
// exports it: at least events events, each shown as its JSON, and an
// export that verifies.
func checkCompressedHistory(t *testing.T, dir string, events int) {
	t.Helper()
	rep, err := verifyDir(t, dir, VerifyOptions{Keys: testKeys()})
	if err != nil {
		t.Fatalf("Verify err = %v", err)
	}
	if !slices.Contains(rep.SigningKeys, "kid-compressed") {
		t.Errorf("Verify reports signing keys %v, want the compressed event's kid-compressed", rep.SigningKeys)
	}
	out, disclosed, _ := export(t, dir, ExportFilter{})
	if disclosed < events {
		t.Errorf("export disclosed %d events, want %d or more", disclosed, events)
	}
	for line := range bytes.Lines(out) {
		var l ExportLine
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatal(err)
		}
		if l.Kind == "event" && !json.Valid(l.Body) {
			t.Errorf("export shows LEDGER seq %d as %q, want its JSON", l.Seq, l.Body)
		}
	}
	if _, err := VerifyExport(bytes.NewReader(out), VerifyOptions{Keys: testKeys()}); err != nil {
		t.Fatalf("VerifyExport err = %v", err)
	}
}

// TestEventFrameRefused: a stored body that starts like a frame but is
// cut, is not one, decompresses past the bound or to something that is
// not a JSON object is malformed, not read as an event; so is a frame of
// another version. None has the leaf of the JSON.
func TestEventFrameRefused(t *testing.T) {
	t.Parallel()
	ev := keyCreatedEvent(t, "e1", "k", "c4f9545dadd78423444ce8c3f0892a39")
	body, err := encodeEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	good := deflateEvent(body, "")
	if !isEventFrame(good) || len(good)*3 > len(body)*2 {
		t.Fatalf("a key creation of %d bytes compressed to %d (frame %v)", len(body), len(good), isEventFrame(good))
	}
	if got, err := decodeEvent(good, "", 9); err != nil || got.ID != ev.ID || got.Seq != 9 {
		t.Fatalf("decodeEvent(frame) = %+v, %v", got, err)
	}
	frame := func(plain []byte) []byte { return append([]byte(eventMagic), eventCodec().Encode(nil, plain)...) }
	bomb := frame(append([]byte("{"), make([]byte, 2<<20)...))
	lying := frame(body)
	lying[len(eventMagic)]-- // the block's length says one byte less than it holds
	m := RawMessage{Stream: ledgerStream, Seq: 9, Subject: ev.Aggregate, Type: ev.Type, MsgID: "m", Body: good}
	jsonLeaf := leafHash(9, ev.Aggregate, ev.Type, "m", bodyDigest(body))
	if m.Leaf() != jsonLeaf {
		t.Fatal("the leaf of a frame is not over its JSON")
	}
	for what, stored := range map[string][]byte{
		"cut":            good[:len(good)-4],
		"magic only":     []byte(eventMagic),
		"past the bound": bomb,
		"wrong length":   lying,
		"not an object":  frame([]byte("[1,2]")),
		"frame of frame": frame(good),
		"other magic":    append([]byte("\x00e\x02"), good[len(eventMagic):]...),
	} {
		if _, err := decodeEvent(stored, "", 9); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: decodeEvent err = %v, want ErrMalformed", what, err)
		}
		m := m
		m.Body = stored
		if _, err := m.Plain(); isEventFrame(stored) && !errors.Is(err, ErrMalformed) { // else it is a body as stored
			t.Errorf("%s: Plain err = %v, want ErrMalformed", what, err)
		}
		if m.Leaf() == jsonLeaf {
			t.Errorf("%s: the leaf is the JSON's", what)
		}
	}
	if len(bomb) > 64<<10 {
		t.Errorf("the bomb is %d bytes; want a frame far smaller than what it holds", len(bomb))
	}
	// What does not shrink, or is past the bound, is stored as it is.
	for _, b := range [][]byte{[]byte(`{}`), append([]byte(`{"x":"`), make([]byte, eventMaxPlain)...)} {
		if got := deflateEvent(b, ""); !bytes.Equal(got, b) {
			t.Errorf("deflateEvent(%d bytes) = a %d-byte frame, want the JSON as it is", len(b), len(got))
		}
	}
}

// TestEventFrameFormatIsStable: a frame written by the first version of
// the format (testdata/event-frame-v1.bin, a key creation) still reads as
// its JSON. The frames on disk depend on eventMagic and eventDict as they
// were: an edit of either fails here.
func TestEventFrameFormatIsStable(t *testing.T) {
	t.Parallel()
	frame, err := os.ReadFile("testdata/event-frame-v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/event-frame-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	want = bytes.TrimSuffix(want, []byte("\n"))
	if !isEventFrame(frame) {
		t.Fatalf("the fixture does not start with eventMagic %q", eventMagic)
	}
	got, err := inflateEvent(frame, "")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the version-1 frame reads as %q, %v; want %s", got, err, want)
	}
	if ev, err := decodeEvent(frame, "", 1); err != nil || ev.Type != TypeKeyCreated || ev.Enclave != "tenant-a" {
		t.Fatalf("decodeEvent(fixture) = %+v, %v", ev, err)
	}
}
