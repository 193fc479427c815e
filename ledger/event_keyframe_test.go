package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestKeyFrame: a key creation or an API import is stored as a key frame
// of about 130 bytes that inflates to its JSON byte for byte, whatever
// its type, version or command id; a key creation in another shape (a
// source, an older reference, a zone, an escaped name, an actor that is
// not an h1: identity, upper-case hex) is an S2 frame, which inflates to
// its JSON too.
func TestKeyFrame(t *testing.T) {
	t.Parallel()
	base := keyCreatedEvent(t, "tenant-a", "bucket-key", "c4f9545dadd78423444ce8c3f0892a39")
	payload := func(ev Event, edit func(*KeyCreated)) Event {
		var k KeyCreated
		if err := json.Unmarshal(ev.Payload, &k); err != nil {
			t.Fatal(err)
		}
		edit(&k)
		ev.Payload, _ = json.Marshal(k)
		return ev
	}
	keyFrames := map[string]Event{
		"created": base,
		"AttemptOf's reference": payload(base, func(k *KeyCreated) {
			k.SecretRef = AttemptSecretRef("tenant-a", "bucket-key", 1, AttemptOf(base.ID))
		}),
		"ChaCha20":           payload(base, func(k *KeyCreated) { k.Type = "ChaCha20" }),
		"version 300":        payload(base, func(k *KeyCreated) { k.Version, k.SecretRef = 300, "tenant-a.bucket-key.300."+base.ID }),
		"command id of text": func() Event { ev := base; ev.CommandID = "migrate/42"; return ev }(),
		"imported":           func() Event { ev := base; ev.Type = TypeKeyImported; return ev }(),
		"before 1970":        func() Event { ev := base; ev.Time = time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC); return ev }(),
	}
	for what, ev := range keyFrames {
		body := mustEncode(t, ev)
		f := deflateEvent(body, "")
		if !bytes.HasPrefix(f, []byte(keyFrameMagic)) || len(f) > 140 {
			t.Errorf("%s: %d bytes of JSON stored as %d bytes starting %q, want a key frame of at most 140", what, len(body), len(f), f[:3])
		}
		if got, err := eventJSON(f, ""); err != nil || !bytes.Equal(got, body) {
			t.Errorf("%s: the key frame inflates to %s, %v; want %s", what, got, err, body)
		}
	}
	others := map[string]Event{
		"source":          payload(base, func(k *KeyCreated) { k.Source = &ImportSource{Kind: "kes-fs"} }),
		"older reference": payload(base, func(k *KeyCreated) { k.SecretRef = "tenant-a.bucket-key.1" }),
		"another attempt": payload(base, func(k *KeyCreated) {
			k.SecretRef = AttemptSecretRef("tenant-a", "bucket-key", 1, AttemptOf("d5cdd2e071ae02cf4f7bb571159cd2f1"))
		}),
		"zone":       func() Event { ev := base; ev.Time = ev.Time.In(time.FixedZone("x", 3600)); return ev }(),
		"escape":     func() Event { ev := base; ev.CommandID = "a<b"; return ev }(),
		"actor":      func() Event { ev := base; ev.Actor = "h1:test"; return ev }(),
		"hex":        func() Event { ev := base; ev.ID = strings.ToUpper(ev.ID); return ev }(),
		"other type": payload(base, func(k *KeyCreated) { k.Type = "HMAC" }),
		"print":      payload(base, func(k *KeyCreated) { k.Fingerprint = k.Fingerprint[:62] }),
	}
	for what, ev := range others {
		body := mustEncode(t, ev)
		f := deflateEvent(body, "")
		if bytes.HasPrefix(f, []byte(keyFrameMagic)) {
			t.Errorf("%s: stored as a key frame", what)
		}
		if got, err := eventJSON(f, ""); err != nil || !bytes.Equal(got, body) {
			t.Errorf("%s: %q inflates to %s, %v; want %s", what, f[:3], got, err, body)
		}
	}
}

func mustEncode(t testing.TB, ev Event) []byte {
	t.Helper()
	body, err := encodeEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestKeyFrameRefused: a stored body that starts like a key frame but is
// cut, has bytes after it, a flag this version does not know, a length
// or number written long, a version past 32 bits, a string that JSON
// would have to escape, or a command id in its long form where its short
// one fits is malformed, and its leaf is not the JSON's.
func TestKeyFrameRefused(t *testing.T) {
	t.Parallel()
	ev := keyCreatedEvent(t, "e1", "k", "c4f9545dadd78423444ce8c3f0892a39")
	ev.CommandID = "cmd"
	body := mustEncode(t, ev)
	good, ok := keyFrameOf(body, "")
	if !ok {
		t.Fatal("no key frame for a key creation")
	}
	m := len(keyFrameMagic)
	vOff := m + 1 + 16 + 8 + 32 // the version's uvarint
	cmdOff := vOff + 1 + 32     // the command id's length
	edit := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := map[string][]byte{
		"magic only":  []byte(keyFrameMagic),
		"trailing":    append(bytes.Clone(good), 0),
		"flag":        edit(func(b []byte) []byte { b[m] |= 0x80; return b }),
		"long number": edit(func(b []byte) []byte { return append(append(b[:vOff:vOff], 0x81, 0x00), good[vOff+1:]...) }),
		"version": edit(func(b []byte) []byte {
			return append(append(b[:vOff:vOff], 0x80, 0x80, 0x80, 0x80, 0x10), good[vOff+1:]...)
		}),
		"quote":        edit(func(b []byte) []byte { b[len(b)-1] = '"'; return b }),
		"backslash":    edit(func(b []byte) []byte { b[len(b)-1] = '\\'; return b }),
		"control":      edit(func(b []byte) []byte { b[len(b)-1] = '\n'; return b }),
		"past the end": edit(func(b []byte) []byte { b[cmdOff] = 200; return b }),
		"long command id": func() []byte {
			b := append(bytes.Clone(good[:cmdOff]), 32)
			b = append(b, "0c753b8944f15973d3e842235079c615"...)
			return append(b, good[cmdOff+4:]...)
		}(),
	}
	for n := m + 1; n < len(good); n++ {
		cases["cut to "+strconv.Itoa(n)] = good[:n]
	}
	jsonLeaf := leafHash(9, ev.Aggregate, ev.Type, "m", bodyDigest(body))
	for what, stored := range cases {
		if _, err := decodeEvent(stored, "", 9); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: decodeEvent err = %v, want ErrMalformed", what, err)
		}
		raw := RawMessage{Stream: ledgerStream, Seq: 9, Subject: ev.Aggregate, Type: ev.Type, MsgID: "m", Body: stored}
		if _, err := raw.Plain(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Plain err = %v, want ErrMalformed", what, err)
		}
		if raw.Leaf() == jsonLeaf {
			t.Errorf("%s: the leaf is the JSON's", what)
		}
	}
	if got, err := decodeEvent(good, "", 9); err != nil || got.ID != ev.ID || got.CommandID != "cmd" {
		t.Fatalf("decodeEvent(good) = %+v, %v", got, err)
	}
}

// FuzzKeyFrame: whatever follows keyFrameMagic, inflating it fails or
// gives the JSON of an event whose key frame is exactly those bytes: one
// stored form per event, and nothing that is not an event.
func FuzzKeyFrame(f *testing.F) {
	ev := keyCreatedEvent(f, "e1", "k", "c4f9545dadd78423444ce8c3f0892a39")
	good, _ := keyFrameOf(mustEncode(f, ev), "")
	f.Add(good[len(keyFrameMagic):])
	ev.CommandID = "x"
	other, _ := keyFrameOf(mustEncode(f, ev), "")
	f.Add(other[len(keyFrameMagic):])
	f.Fuzz(func(t *testing.T, rest []byte) {
		frame := append([]byte(keyFrameMagic), rest...)
		plain, err := inflateEvent(frame, "")
		if err != nil {
			if !errors.Is(err, errEventFrame) {
				t.Fatalf("inflate err = %v, want errEventFrame", err)
			}
			return
		}
		if _, err := decodeEvent(frame, "", 1); err != nil {
			t.Fatalf("inflated to %s, which does not decode: %v", plain, err)
		}
		if again, ok := keyFrameOf(plain, ""); !ok || !bytes.Equal(again, frame) {
			t.Fatalf("%x inflates to %s, whose key frame is %x, %v", frame, plain, again, ok)
		}
	})
}

// TestKeyFrameFormatIsStable: the key frames of two fixtures, a key
// creation whose reference ends in AttemptOf's attempt (key-frame.json)
// and one written before AttemptOf, with the whole event id
// (event-frame-v1.json), still inflate to their JSON, and those events
// still make those very bytes: the layout of keyFrameMagic's version is
// fixed.
func TestKeyFrameFormatIsStable(t *testing.T) {
	t.Parallel()
	for frameFile, jsonFile := range map[string]string{
		"testdata/key-frame.bin":      "testdata/key-frame.json",
		"testdata/key-frame-long.bin": "testdata/event-frame-v1.json",
	} {
		frame, err := os.ReadFile(frameFile)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(jsonFile)
		if err != nil {
			t.Fatal(err)
		}
		want = bytes.TrimSuffix(want, []byte("\n"))
		if got, err := inflateEvent(frame, ""); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s reads as %q, %v; want %s", frameFile, got, err, want)
		}
		if got := deflateEvent(want, ""); !bytes.Equal(got, frame) {
			t.Errorf("the event of %s is stored as %x, want %x", jsonFile, got, frame)
		}
	}
}

// BenchmarkKeyFrame stores (deflate) and reads (decodeEvent) a key
// creation as a key frame and as the S2 frame an earlier version wrote.
//
//	go test -run '^$' -bench BenchmarkKeyFrame ./ledger
func BenchmarkKeyFrame(b *testing.B) {
	body := mustEncode(b, keyCreatedEvent(b, "tenant-a", "bucket-key", "c4f9545dadd78423444ce8c3f0892a39"))
	s2Frame := append([]byte(eventMagic), eventCodec().Encode(nil, body)...)
	subject := KeySubject("tenant-a", "bucket-key")
	for _, c := range []struct {
		name  string
		frame []byte
		store func([]byte) []byte
	}{
		{"key", deflateEvent(body, subject), func(body []byte) []byte { return deflateEvent(body, subject) }},
		{"s2", s2Frame, func(body []byte) []byte { return append([]byte(eventMagic), eventCodec().Encode(nil, body)...) }},
	} {
		b.Run("store/"+c.name, func(b *testing.B) {
			b.ReportMetric(float64(len(c.frame)), "B/event")
			for b.Loop() {
				c.store(body)
			}
		})
		b.Run("read/"+c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := decodeEvent(c.frame, subject, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestKeyFrameOnItsSubject: a key creation published on its own subject
// is a key frame of layout 2, without enclave and name (its subject's
// tokens) and, when its command id is its event id, without the command
// id: it inflates to its JSON on that subject only. On another key's
// subject it is another event (the leaf covers subject and JSON); on a
// subject that is no key's, or without a subject, it is malformed.
// Non-canonical layout-2 frames are refused too.
func TestKeyFrameOnItsSubject(t *testing.T) {
	t.Parallel()
	id := "c4f9545dadd78423444ce8c3f0892a39"
	ev := keyCreatedEvent(t, "tenant-a", "bucket-key", id)
	ev.CommandID = "cmd"
	subject := KeySubject("tenant-a", "bucket-key")
	body := mustEncode(t, ev)
	v1, v2 := deflateEvent(body, ""), deflateEvent(body, subject)
	if !bytes.HasPrefix(v2, []byte(keyFrameMagic2)) || len(v2) != len(v1)-2-len("tenant-a")-len("bucket-key") {
		t.Fatalf("frame on its subject: %d bytes %q, want layout 2 of %d", len(v2), v2[:3], len(v1)-2-len("tenant-a")-len("bucket-key"))
	}
	if got, err := eventJSON(v2, subject); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("layout 2 inflates to %s, %v", got, err)
	}
	if got, err := eventJSON(v2, KeySubject("tenant-b", "other")); err != nil || bytes.Equal(got, body) || !bytes.Contains(got, []byte(`"name":"other"`)) {
		t.Fatalf("on another key's subject: %s, %v; want that key's event", got, err)
	}
	for _, subj := range []string{"", "ledger.tenant-a.identity.x", "ledger.tenant-a.key.", "ledger..key.k", "ledger.a.b.key.c", "secrets.tenant-a.key.k", "ledger.tenant-a.key.a b"} {
		if _, err := eventJSON(v2, subj); !errors.Is(err, errEventFrame) {
			t.Errorf("layout 2 on %q: %v, want errEventFrame", subj, err)
		}
	}
	// A command id that is its event id is not stored again.
	same := ev
	same.CommandID = id
	sameBody := mustEncode(t, same)
	f := deflateEvent(sameBody, subject)
	if f[len(keyFrameMagic2)]&keyFrameCmdIsID == 0 || len(f) != len(v2)-len("cmd")-1 {
		t.Fatalf("command id = event id: %d bytes, flags %#x; want keyFrameCmdIsID and %d bytes", len(f), f[3], len(v2)-len("cmd")-1)
	}
	if got, err := eventJSON(f, subject); err != nil || !bytes.Equal(got, sameBody) {
		t.Fatalf("keyFrameCmdIsID inflates to %s, %v", got, err)
	}
	// Hostile: the same event in a form the writer never makes.
	m := len(keyFrameMagic2)
	cmdOff := m + 1 + 16 + 8 + 32 + 1 + 32
	long := append(append(bytes.Clone(f[:cmdOff]), 32), id...) // the id again, as a string
	long[m] &^= keyFrameCmdIsID
	hexAgain := append(bytes.Clone(f[:cmdOff]), f[m+1:m+17]...) // the id again, as 16 bytes
	hexAgain[m] = hexAgain[m]&^keyFrameCmdIsID | keyFrameHexCmd
	both := bytes.Clone(f)
	both[m] |= keyFrameHexCmd
	v1WithFlag := append([]byte(keyFrameMagic), f[m:]...) // layout 1 has no keyFrameCmdIsID
	v1WithFlag = appendFrameString(appendFrameString(v1WithFlag, "tenant-a"), "bucket-key")
	for what, stored := range map[string][]byte{"id as text": long, "id as hex": hexAgain, "both flags": both,
		"layout 1 with keyFrameCmdIsID": v1WithFlag, "names after layout 2": append(bytes.Clone(v2), 1, 'x')} {
		if _, err := eventJSON(stored, subject); !errors.Is(err, errEventFrame) {
			t.Errorf("%s: %v, want errEventFrame", what, err)
		}
	}
}

// FuzzKeyFrame2: whatever follows keyFrameMagic2, read on a key's
// subject, fails or is exactly the frame keyFrameOf makes of what it
// inflates to on that subject.
func FuzzKeyFrame2(f *testing.F) {
	subject := KeySubject("e1", "k")
	ev := keyCreatedEvent(f, "e1", "k", "c4f9545dadd78423444ce8c3f0892a39")
	good, _ := keyFrameOf(mustEncode(f, ev), subject)
	f.Add(good[len(keyFrameMagic2):])
	ev.CommandID = ev.ID
	same, _ := keyFrameOf(mustEncode(f, ev), subject)
	f.Add(same[len(keyFrameMagic2):])
	f.Fuzz(func(t *testing.T, rest []byte) {
		frame := append([]byte(keyFrameMagic2), rest...)
		plain, err := inflateEvent(frame, subject)
		if err != nil {
			if !errors.Is(err, errEventFrame) {
				t.Fatalf("inflate err = %v, want errEventFrame", err)
			}
			return
		}
		if again, ok := keyFrameOf(plain, subject); !ok || !bytes.Equal(again, frame) {
			t.Fatalf("%x inflates to %s, whose key frame is %x, %v", frame, plain, again, ok)
		}
	})
}

// TestKeyFrameMovedToAnotherSubject: an attacker with write access who
// stores a key frame of layout 2 on another key's subject makes it that
// key's creation, and the chain names the message; the same history
// written again unchanged verifies.
func TestKeyFrameMovedToAnotherSubject(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	s := openTestStore(t, src)
	ctx := context.Background()
	for i := range 4 {
		ev := keyCreatedEvent(t, "enc", fmt.Sprintf("k%d", i), fmt.Sprintf("%032x", i+1))
		if _, _, err := s.Append(ctx, ev, Expect{Seq: 0}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Checkpoint(ctx, testSigner()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	led, aud := rawMessages(t, src, ledgerStream), rawMessages(t, src, auditStream)
	if !bytes.HasPrefix(led[1].Body, []byte(keyFrameMagic2)) {
		t.Fatalf("seq 2 stored as %q, want a key frame of layout 2", led[1].Body[:min(3, len(led[1].Body))])
	}
	same := func(_ int, m *nats.Msg) *nats.Msg { return m }
	moved := func(i int, m *nats.Msg) *nats.Msg {
		if i == 1 {
			m.Subject = KeySubject("enc", "k9")
		}
		return m
	}
	verifiesUpTo(t, forgeEach(t, src, led, aud, same), ledgerStream, 0)
	verifiesUpTo(t, forgeEach(t, src, led, aud, moved), ledgerStream, 2)
}
