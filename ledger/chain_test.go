package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testSigner is a fixed checkpoint signing key.
func testSigner() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
}

func testKeys() map[string]ed25519.PublicKey {
	pub := testSigner().Public().(ed25519.PublicKey)
	return map[string]ed25519.PublicKey{KeyID(pub): pub}
}

// buildChained writes a small chained history to dir and closes it: n
// events on a few subjects, an audit batch after every event and a
// checkpoint after every fourth, and a final checkpoint, as a cleanly
// stopped server leaves it.
func buildChained(tb testing.TB, dir string, n int) {
	tb.Helper()
	ctx := context.Background()
	s := openTestStore(tb, dir)
	a := s.NewAuditor(AuditConfig{Sync: true})
	for i := 1; i <= n; i++ {
		mustAppend(tb, s, KeySubject("enc", fmt.Sprintf("k%d", i%3)), 1)
		rec := &AuditRecord{Time: time.Date(2026, 1, 2, 3, 4, i, 0, time.UTC), Node: "n1", Identity: "h1:test", Enclave: "enc",
			Method: "POST", Path: "/v1/kms/enc", Status: 200, Items: []AuditItem{{Command: "KEY:GENERATE", Key: "k"}}}
		if err := a.Record(ctx, rec); err != nil {
			tb.Fatalf("Record #%d err = %v", i, err)
		}
		if i%4 == 0 {
			if _, err := s.Checkpoint(ctx, testSigner()); err != nil {
				tb.Fatalf("Checkpoint err = %v", err)
			}
		}
	}
	if err := a.Close(); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.Checkpoint(ctx, testSigner()); err != nil {
		tb.Fatal(err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
}

// verifyDir opens dir read-only and verifies it.
func verifyDir(tb testing.TB, dir string, opts VerifyOptions) (*VerifyReport, error) {
	tb.Helper()
	s, err := Open(context.Background(), Config{Dir: dir, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Verify(context.Background(), opts)
}

// rawMessages reads every message of a stream of dir.
func rawMessages(tb testing.TB, dir, stream string) []RawMessage {
	tb.Helper()
	s, err := Open(context.Background(), Config{Dir: dir, ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	st := s.ledger
	if stream == auditStream {
		st = s.audit
	}
	last, err := streamLast(context.Background(), st)
	if err != nil {
		tb.Fatal(err)
	}
	var out []RawMessage
	if err := scanStream(context.Background(), st, stream, 1, last, func(m RawMessage) error {
		out = append(out, m)
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return out
}

// forge writes a new data dir as an attacker with write access but no
// signing key would: the given LEDGER and AUDIT messages, with their
// headers, published in order into fresh streams (so sequences are
// renumbered and the store's own checksums are right), and the original
// witness file.
func forge(tb testing.TB, src string, ledgerMsgs, auditMsgs []RawMessage) string {
	tb.Helper()
	dir := tb.TempDir()
	ctx := context.Background()
	s := openTestStore(tb, dir)
	for _, batch := range []struct {
		stream string
		msgs   []RawMessage
	}{{ledgerStream, ledgerMsgs}, {auditStream, auditMsgs}} {
		for _, m := range batch.msgs {
			msg := nats.NewMsg(m.Subject)
			msg.Data = m.Body
			msg.Header.Set(TypeHeader, m.Type)
			if m.Prev != "" {
				msg.Header.Set(PrevHeader, m.Prev)
			}
			if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(m.MsgID), jetstream.WithExpectStream(batch.stream)); err != nil {
				tb.Fatalf("forge %s seq %d: %v", batch.stream, m.Seq, err)
			}
		}
	}
	closeWithWitness(tb, s, src, dir)
	return dir
}

// closeWithWitness closes s (on dir) and gives dir the witness file of
// src, as the forger keeps it.
func closeWithWitness(tb testing.TB, s *Store, src, dir string) {
	tb.Helper()
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(src, witnessFile))
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, witnessFile), b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

func TestVerifyCleanHistory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	buildChained(t, dir, 9)
	rep, err := verifyDir(t, dir, VerifyOptions{Keys: testKeys()})
	if err != nil {
		t.Fatalf("Verify err = %v, want nil", err)
	}
	// 9 events + checkpoints after events 4 and 8 and a final one.
	if rep.Ledger.Last != 12 || rep.Checkpoints != 3 || rep.Ledger.SignedThrough != 12 || rep.Witness != 12 {
		t.Errorf("LEDGER report = %+v, %d checkpoints, witness %d; want last 12, 3 checkpoints, signed through 12, witness 12",
			rep.Ledger, rep.Checkpoints, rep.Witness)
	}
	if rep.Audit.Last != 9 || rep.Audit.SignedThrough != 9 {
		t.Errorf("AUDIT report = %+v, want last 9 signed through 9", rep.Audit)
	}
	// Verifying from the middle starts at the Prev header there.
	if rep, err := verifyDir(t, dir, VerifyOptions{From: 6, Keys: testKeys()}); err != nil || rep.Ledger.From != 6 || rep.Audit.From != 8 {
		t.Errorf("Verify(From 6) = (%+v, %+v, %v), want LEDGER from 6, AUDIT from 8 (the checkpoint at 10 signs AUDIT 8)",
			rep.Ledger, rep.Audit, err)
	}
	if _, err := verifyDir(t, dir, VerifyOptions{From: 13, Keys: testKeys()}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Verify(From 13) of a 12-event ledger err = %v, want ErrInvalid", err)
	}
}

func TestVerifyUntrustedKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	buildChained(t, dir, 4)
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	for name, keys := range map[string]map[string]ed25519.PublicKey{
		"no keys":    nil,
		"other key":  {KeyID(other): other},
		"swapped id": {KeyID(testSigner().Public().(ed25519.PublicKey)): other},
	} {
		_, err := verifyDir(t, dir, VerifyOptions{Keys: keys})
		var te *TamperError
		if !errors.As(err, &te) || te.Stream != ledgerStream || te.Seq != 5 {
			t.Errorf("%s: Verify err = %v, want TamperError at LEDGER seq 5 (the first checkpoint)", name, err)
		}
	}
}

// TestVerifyForgedHistories rebuilds the streams as someone with write
// access to the data directory would, and checks that Verify names the
// first bad sequence.
func TestVerifyForgedHistories(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	buildChained(t, src, 9)
	led := rawMessages(t, src, ledgerStream) // seq 1..12; checkpoints at 5, 10, 12
	aud := rawMessages(t, src, auditStream)  // seq 1..9
	without := func(ms []RawMessage, i int) []RawMessage {
		return append(append([]RawMessage(nil), ms[:i]...), ms[i+1:]...)
	}
	swapped := func(ms []RawMessage, i, j int) []RawMessage {
		out := append([]RawMessage(nil), ms...)
		out[i], out[j] = out[j], out[i]
		return out
	}
	changed := func(ms []RawMessage, i int, f func(*RawMessage)) []RawMessage {
		out := append([]RawMessage(nil), ms...)
		f(&out[i])
		return out
	}
	inserted := func(ms []RawMessage, i int) []RawMessage {
		m := ms[i-1]
		m.MsgID = "forged"
		m.Body = editEvent(t, m.Body, `"n":1`, `"n":2`)
		m.Prev = ms[i].Prev // claims to follow what the original did
		out := append(append(append([]RawMessage(nil), ms[:i]...), m), ms[i:]...)
		return out
	}
	cases := []struct {
		name       string
		ledger     []RawMessage
		audit      []RawMessage
		wantStream string
		wantSeq    uint64
	}{
		{"untouched", led, aud, "", 0},
		{"dropped event", without(led, 2), aud, ledgerStream, 3},
		{"swapped events", swapped(led, 5, 6), aud, ledgerStream, 6},
		{"inserted event", inserted(led, 2), aud, ledgerStream, 3},
		{"changed body", changed(led, 6, func(m *RawMessage) {
			m.Body = editEvent(t, m.Body, `"n":1`, `"n":9`)
		}), aud, ledgerStream, 7},
		{"a byte of a stored frame changed", changed(led, 6, func(m *RawMessage) { m.Body = flipInFrame(t, m.Body) }),
			aud, ledgerStream, 7},
		{"a frame replaced by its JSON", changed(led, 6, func(m *RawMessage) { m.Body = editEvent(t, m.Body, "", "") }),
			aud, "", 0},
		{"changed type header", changed(led, 1, func(m *RawMessage) { m.Type = "test.forged.v1" }), aud, ledgerStream, 2},
		{"changed Prev header", changed(led, 2, func(m *RawMessage) { m.Prev = led[0].Prev }), aud, ledgerStream, 3},
		{"removed Prev header", changed(led, 2, func(m *RawMessage) { m.Prev = "" }), aud, ledgerStream, 3},
		{"changed checkpoint", changed(led, 4, func(m *RawMessage) {
			m.Body = bytes.Replace(m.Body, []byte(`"seq":`), []byte(`"seq": `), 1)
		}), aud, ledgerStream, 5},
		{"dropped audit batch", led, without(aud, 3), auditStream, 4},
		{"swapped audit batches", led, swapped(aud, 0, 1), auditStream, 1},
		{"changed audit batch", led, changed(aud, 8, func(m *RawMessage) {
			m.Body = bytes.Replace(m.Body, []byte(`"status":200`), []byte(`"status":403`), 1)
		}), auditStream, 9},
		{"truncated ledger", led[:11], aud, ledgerStream, 12},
		{"truncated audit", led, aud[:8], auditStream, 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			verifiesUpTo(t, forge(t, src, tc.ledger, tc.audit), tc.wantStream, tc.wantSeq)
		})
	}
}

// verifiesUpTo verifies dir: it must pass if seq is 0, else fail with a
// TamperError at seq of stream.
func verifiesUpTo(t *testing.T, dir, stream string, seq uint64) {
	t.Helper()
	_, err := verifyDir(t, dir, VerifyOptions{Keys: testKeys()})
	if seq == 0 {
		if err != nil {
			t.Fatalf("Verify err = %v, want nil", err)
		}
		return
	}
	var te *TamperError
	if !errors.As(err, &te) || !errors.Is(err, ErrTampered) || te.Stream != stream || te.Seq != seq {
		t.Fatalf("Verify err = %v, want TamperError at %s seq %d", err, stream, seq)
	}
}

// TestChainSurvivesRestart: the head is reloaded from the last message.
func TestChainSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	mustAppend(t, s, KeySubject("enc", "k"), 3)
	seq, sum, _ := s.ChainHead(StreamLedger)
	s.Close()
	s = openTestStore(t, dir)
	if seq2, sum2, _ := s.ChainHead(StreamLedger); seq2 != seq || sum2 != sum || seq != 3 {
		t.Fatalf("ChainHead after reopen = (%d, %s), want (%d, %s)", seq2, sum2, seq, sum)
	}
	mustAppend(t, s, KeySubject("enc", "k"), 2)
	s.Close()
	if _, err := verifyDir(t, dir, VerifyOptions{}); err != nil {
		t.Fatalf("Verify err = %v, want nil", err)
	}
}

// TestChainOverLegacyMessages: messages written before the chain existed
// (no Prev header) are hashed from the start at Open; later messages
// carry Prev, and a Prev header missing after that is an error.
func TestChainOverLegacyMessages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	ctx := context.Background()
	for i := range 3 {
		ev := testEvent(KeySubject("enc", "old"), fmt.Sprintf("legacy-%d", i))
		body, _ := encodeEvent(ev)
		if _, err := s.js.PublishMsg(ctx, newMsg(ev, body), jetstream.WithMsgID(ev.CommandID)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = openTestStore(t, dir) // hashes the three legacy messages
	mustAppend(t, s, KeySubject("enc", "new"), 2)
	s.Close()
	if _, err := verifyDir(t, dir, VerifyOptions{}); err != nil {
		t.Fatalf("Verify err = %v, want nil", err)
	}
	msgs := rawMessages(t, dir, ledgerStream)
	if msgs[2].Prev != "" || msgs[3].Prev == "" {
		t.Fatalf("Prev headers = %q, %q; want none on legacy seq 3, one on seq 4", msgs[2].Prev, msgs[3].Prev)
	}
}

// TestAppendAfterForeignWrite: a message published around the Store
// moves the stream; the next Append reloads the head instead of writing
// a wrong Prev header.
func TestAppendAfterForeignWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	ctx := context.Background()
	mustAppend(t, s, KeySubject("enc", "k"), 2)
	ev := testEvent(KeySubject("enc", "k"), "foreign")
	body, _ := encodeEvent(ev)
	if _, err := s.js.PublishMsg(ctx, newMsg(ev, body)); err != nil {
		t.Fatal(err)
	}
	if seq, _, err := s.Append(ctx, testEvent(KeySubject("enc", "k"), "after"), Expect{Any: true}); err != nil || seq != 4 {
		t.Fatalf("Append after a foreign write = (%d, %v), want (4, nil)", seq, err)
	}
	s.Close()
	_, err := verifyDir(t, dir, VerifyOptions{})
	var te *TamperError
	if !errors.As(err, &te) || te.Seq != 3 {
		t.Fatalf("Verify err = %v, want the foreign message (seq 3, no Prev header) reported", err)
	}
}

// editEvent returns a stored event body with its JSON's first old
// replaced by new, stored as JSON (it must contain old unless old is "").
func editEvent(t *testing.T, stored []byte, old, new string) []byte {
	t.Helper()
	body, err := eventJSON(stored, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte(old)) {
		t.Fatalf("event %s holds no %s", body, old)
	}
	return bytes.Replace(body, []byte(old), []byte(new), 1)
}

// flipInFrame returns a copy of a compressed event with one bit of its
// block changed.
func flipInFrame(t *testing.T, stored []byte) []byte {
	t.Helper()
	if !isEventFrame(stored) {
		t.Fatal("a single node stored an event as JSON, not as a frame")
	}
	b := bytes.Clone(stored)
	b[len(b)-3] ^= 0x20
	return b
}
