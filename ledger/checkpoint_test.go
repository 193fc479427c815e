package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// readGoldenEvent decodes testdata/events/<typ>.json strictly.
func readGoldenEvent(t *testing.T, typ string) ([]byte, Event) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "events", typ+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil || ev.Type != typ {
		t.Fatalf("decode golden %s = (%s, %v)", typ, ev.Type, err)
	}
	return bytes.TrimSuffix(b, []byte("\n")), ev
}

// TestGoldenCheckpoint decodes the golden signing key and checkpoint,
// checks the checkpoint's canonical form and its signature by the golden
// key, and pins the signed message byte for byte.
func TestGoldenCheckpoint(t *testing.T) {
	_, kev := readGoldenEvent(t, TypeSigningKey)
	var key SigningKey
	dec := json.NewDecoder(bytes.NewReader(kev.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&key); err != nil {
		t.Fatal(err)
	}
	pub := ed25519.PublicKey(key.PublicKey)
	if key.Algorithm != SigningAlgorithm || KeyID(pub) != key.KeyID || len(key.SealedPrivateKey) == 0 {
		t.Fatalf("golden signing key = %+v: want Ed25519, key id %s, a sealed private key", key, KeyID(pub))
	}

	body, cev := readGoldenEvent(t, TypeCheckpoint)
	m := RawMessage{Seq: 6, Subject: cev.Aggregate, Type: cev.Type, MsgID: cev.CommandID, Body: body}
	cp, err := parseCheckpoint(&m)
	if err != nil {
		t.Fatalf("parseCheckpoint(golden) err = %v", err)
	}
	if err := cp.Verify(map[string]ed25519.PublicKey{key.KeyID: pub}); err != nil {
		t.Fatalf("golden checkpoint Verify err = %v", err)
	}
	want := "kmsledger checkpoint v1\n" +
		"key ed25519:fe812c12f3ab4ce6\n" +
		"time 2026-11-23T15:00:06Z\n" +
		"stream LEDGER 5 5f0b1e6d0a3c4f2e8b7d9c1a2e3f4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c\n" +
		"stream AUDIT 3 0d9c8b7a6f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a1908f7e6d5c4b\n"
	if got := string(cp.SignedMessage()); got != want {
		t.Fatalf("SignedMessage() = %q, want %q", got, want)
	}
	m.Seq = 7 // the envelope's ids name the sequence
	if _, err := parseCheckpoint(&m); err == nil {
		t.Fatal("parseCheckpoint at another sequence err = nil, want error")
	}
}

// TestCheckpointOnlyWhenSomethingIsNew: a second checkpoint without new
// events writes nothing, also after a restart; the Checkpointer writes a
// last one on Close.
func TestCheckpointOnlyWhenSomethingIsNew(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s := openTestStore(t, dir)
	mustAppend(t, s, KeySubject("enc", "k"), 2)
	if seq, err := s.Checkpoint(ctx, testSigner()); err != nil || seq != 3 {
		t.Fatalf("Checkpoint = (%d, %v), want (3, nil)", seq, err)
	}
	if seq, err := s.Checkpoint(ctx, testSigner()); err != nil || seq != 0 {
		t.Fatalf("second Checkpoint = (%d, %v), want (0, nil): nothing new", seq, err)
	}
	s.Close()
	s = openTestStore(t, dir)
	if seq, err := s.Checkpoint(ctx, testSigner()); err != nil || seq != 0 {
		t.Fatalf("Checkpoint after restart = (%d, %v), want (0, nil): nothing new", seq, err)
	}
	c := s.StartCheckpoints(testSigner(), CheckpointConfig{Events: 1000, Interval: time.Hour})
	mustAppend(t, s, KeySubject("enc", "k"), 1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if head, _ := s.Head(ctx); head != 5 {
		t.Fatalf("Head after Checkpointer.Close = %d, want 5 (a final checkpoint)", head)
	}
}

// TestCheckpointerEveryNEvents: a checkpoint follows every N appended
// events.
func TestCheckpointerEveryNEvents(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, "")
	c := s.StartCheckpoints(testSigner(), CheckpointConfig{Events: 5, Interval: time.Hour})
	defer c.Close()
	mustAppend(t, s, KeySubject("enc", "k"), 5)
	waitFor(t, 5*time.Second, func() bool { seq, _, _ := s.ChainHead(StreamLedger); return seq == 6 })
	m, err := s.ledger.GetMsg(context.Background(), 6)
	if err != nil || rawFrom(ledgerStream, m).Type != TypeCheckpoint {
		t.Fatalf("seq 6 = %v, %v; want a checkpoint", m, err)
	}
}
