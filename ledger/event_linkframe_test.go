package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestLinkFramesStored: a single node stores every link of both chains
// (events alone and in a batch, audit batches, checkpoints) without the
// Prev and Type headers, in a link frame; read back, each gives the Type,
// Prev and stored body its headers would have given, the chains verify,
// and a key creation's link costs 36 bytes around its key frame instead
// of the 114 bytes of the two headers.
func TestLinkFramesStored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	buildChained(t, dir, 6)
	s := openTestStore(t, dir)
	appendMixed(t, s) // JSON and header form first, as a cluster node or an earlier version wrote them
	s.Close()
	if _, err := verifyDir(t, dir, VerifyOptions{Keys: testKeys()}); err != nil {
		t.Fatalf("Verify err = %v", err)
	}
	s, err := Open(context.Background(), Config{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	linked, headed := 0, 0
	for _, st := range []struct {
		name string
		js   jetstream.Stream
	}{{ledgerStream, s.ledger}, {auditStream, s.audit}} {
		last, err := streamLast(ctx, st.js)
		if err != nil {
			t.Fatal(err)
		}
		var sum Sum
		for seq := uint64(1); seq <= last; seq++ {
			m, err := st.js.GetMsg(ctx, seq)
			if err != nil {
				t.Fatal(err)
			}
			raw := rawFrom(st.name, m)
			if p, ok := parseSum(raw.Prev); !ok || p != sum || raw.Type == "" {
				t.Fatalf("%s seq %d read as Prev %q, Type %q; want the chain value before it and a type", st.name, seq, raw.Prev, raw.Type)
			}
			sum = chainNext(sum, raw.Leaf())
			if !isLinkFrame(m.Data) {
				headed++
				continue
			}
			linked++
			if m.Header.Get(PrevHeader) != "" || m.Header.Get(TypeHeader) != "" {
				t.Errorf("%s seq %d: a link frame and headers %v", st.name, seq, m.Header)
			}
			if _, isKey := keyFrameType(raw.Body); isKey && len(m.Data) != len(raw.Body)+36 {
				t.Errorf("%s seq %d: a key frame of %d bytes stored in %d, want 36 more", st.name, seq, len(raw.Body), len(m.Data))
			}
		}
	}
	if linked < 20 || headed != 1 {
		t.Errorf("%d links in link frames, %d with headers; want every one but appendMixed's first in a link frame", linked, headed)
	}
}

// TestLinkFrameRefused: a stored body that starts like a link frame but is
// cut, holds a type a header could not, names the type of a key frame or
// none of another body, holds a link frame again, or comes with a Prev or
// Type header too, gives no Type and Prev, and Plain refuses its body;
// decodeEvent refuses it as malformed.
func TestLinkFrameRefused(t *testing.T) {
	t.Parallel()
	ev := keyCreatedEvent(t, "e1", "k", "c4f9545dadd78423444ce8c3f0892a39")
	key := deflateEvent(mustEncode(t, ev), "")
	ev2 := testEvent(KeySubject("e1", "k"), "c1")
	s2 := deflateEvent(mustEncode(t, ev2), "")
	prev := Sum{1, 2, 3}
	link := func(typ string, body []byte) []byte {
		f := append(append([]byte(linkFrameMagic), prev[:]...), appendFrameString(nil, typ)...)
		return append(f, body...)
	}
	goodKey, goodOther := link("", key), link(ev2.Type, s2)
	for what, f := range map[string][]byte{"key frame": goodKey, "S2 frame": goodOther} {
		p, typ, body, err := parseLinkFrame(f)
		if err != nil || p != prev || (typ != TypeKeyCreated && typ != ev2.Type) {
			t.Fatalf("%s: parse = %x, %q, %v", what, p, typ, err)
		}
		if _, err := decodeEvent(f, "", 3); err != nil {
			t.Fatalf("%s: decodeEvent err = %v", what, err)
		}
		if got := linkMsg(&nats.Msg{Subject: "s", Data: body, Header: nats.Header{TypeHeader: {typ}, "X": {"y"}}}, prev); !bytes.Equal(got.Data, f) || len(got.Header) != 1 {
			t.Fatalf("%s: linkMsg = %x %v, want %x and the other header", what, got.Data, got.Header, f)
		}
	}
	bad := map[string][]byte{
		"magic only":             []byte(linkFrameMagic),
		"key frame type named":   link(TypeKeyCreated, key),
		"no type for an S2 body": link("", s2),
		"link in link":           link(ev2.Type, goodOther),
		"quote in type":          link(`a"b`, s2),
		"control in type":        link("a\nb", s2),
		"type past the end":      append(append([]byte(linkFrameMagic), prev[:]...), 0x7f, 'a'),
		"long type":              link(strings.Repeat("t", maxIDLen+1), s2),
		"non-minimal length":     append(append(append([]byte(linkFrameMagic), prev[:]...), 0x80, 0x00), s2...),
	}
	for n := 1; n < len(linkFrameMagic)+len(prev); n++ {
		bad[fmt.Sprintf("cut at %d", n)] = goodOther[:n]
	}
	for what, f := range bad {
		if _, _, _, err := parseLinkFrame(f); !errors.Is(err, errEventFrame) {
			t.Errorf("%s: parse err = %v, want errEventFrame", what, err)
		}
		if _, err := decodeEvent(f, "", 3); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: decodeEvent err = %v, want ErrMalformed", what, err)
		}
		raw := rawMessage(ledgerStream, 3, "s", nats.Header{nats.MsgIdHdr: {"m"}}, f)
		if _, err := raw.Plain(); raw.Prev != "" || raw.Type != "" || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: read as Prev %q, Type %q, Plain err %v; want neither and ErrMalformed", what, raw.Prev, raw.Type, err)
		}
	}
	for _, h := range []string{PrevHeader, TypeHeader} {
		raw := rawMessage(ledgerStream, 3, "s", nats.Header{h: {"x"}}, goodOther)
		if _, err := raw.Plain(); !errors.Is(err, ErrMalformed) || !bytes.Equal(raw.Body, goodOther) {
			t.Errorf("a link frame with a %s header: body %x, Plain err %v; want it kept and ErrMalformed", h, raw.Body, err)
		}
	}
	// What a link frame cannot hold keeps its headers.
	for what, m := range map[string]*nats.Msg{
		"no type":          {Data: s2, Header: nats.Header{}},
		"type with quote":  {Data: s2, Header: nats.Header{TypeHeader: {`a"b`}}},
		"another key type": {Data: key, Header: nats.Header{TypeHeader: {TypeKeyImported}}},
		"a link frame":     {Data: goodOther, Header: nats.Header{TypeHeader: {ev2.Type}}},
	} {
		if got := linkMsg(m, prev); got != m {
			t.Errorf("%s: linkMsg made %x", what, got.Data)
		}
	}
}

// FuzzLinkFrame: whatever follows the magic either fails to parse with
// errEventFrame, or is the one link frame linkMsg makes of what it parses
// to.
func FuzzLinkFrame(f *testing.F) {
	ev := keyCreatedEvent(f, "e1", "k", "c4f9545dadd78423444ce8c3f0892a39")
	key := deflateEvent(mustEncode(f, ev), "")
	var prev Sum
	f.Add(append(append(prev[:], 0), key...))
	f.Add(append(append(prev[:], 3, 'a', '.', 'b'), `{"x":1}`...))
	f.Fuzz(func(t *testing.T, rest []byte) {
		frame := append([]byte(linkFrameMagic), rest...)
		p, typ, body, err := parseLinkFrame(frame)
		if err != nil {
			if !errors.Is(err, errEventFrame) {
				t.Fatalf("parse err = %v, want errEventFrame", err)
			}
			return
		}
		msg := &nats.Msg{Subject: "s", Data: body, Header: nats.Header{TypeHeader: {typ}}}
		if again := linkMsg(msg, p); !bytes.Equal(again.Data, frame) {
			t.Fatalf("%x parses to %x %q %x, whose link frame is %x", frame, p, typ, body, again.Data)
		}
	})
}

// TestLinkFrameForgeries: a history whose links an attacker stored in
// link frames of his own is checked as one with headers: the same links
// verify, a link frame with another chain value, another type, or a Prev
// header beside it is reported at its sequence.
func TestLinkFrameForgeries(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	buildChained(t, src, 5)
	led := rawMessages(t, src, ledgerStream)
	aud := rawMessages(t, src, auditStream)
	relink := func(i int, edit func(*nats.Msg)) func(int, *nats.Msg) *nats.Msg {
		return func(j int, msg *nats.Msg) *nats.Msg {
			p, _ := parseSum(led[j].Prev)
			out := linkMsg(msg, p)
			if j == i {
				edit(out)
			}
			return out
		}
	}
	cases := []struct {
		name    string
		each    func(int, *nats.Msg) *nats.Msg
		wantSeq uint64
	}{
		{"every link in a link frame", relink(-1, nil), 0},
		{"another chain value", relink(2, func(m *nats.Msg) { m.Data[len(linkFrameMagic)] ^= 1 }), 3},
		{"another type", relink(1, func(m *nats.Msg) {
			m.Data = bytes.Replace(m.Data, []byte(led[1].Type), []byte(strings.ToUpper(led[1].Type)), 1)
		}), 2},
		{"a Prev header beside it", relink(3, func(m *nats.Msg) { m.Header.Set(PrevHeader, led[3].Prev) }), 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			verifiesUpTo(t, forgeEach(t, src, led, aud, tc.each), ledgerStream, tc.wantSeq)
		})
	}
}

// forgeEach is forge with each LEDGER message as each(i, message with
// headers) makes it.
func forgeEach(tb testing.TB, src string, led, aud []RawMessage, each func(int, *nats.Msg) *nats.Msg) string {
	tb.Helper()
	dir := tb.TempDir()
	ctx := context.Background()
	s := openTestStore(tb, dir)
	for i, m := range led {
		msg := nats.NewMsg(m.Subject)
		msg.Data = m.Body
		msg.Header.Set(TypeHeader, m.Type)
		msg.Header.Set(PrevHeader, m.Prev)
		msg.Header.Set(nats.MsgIdHdr, m.MsgID)
		if _, err := s.js.PublishMsg(ctx, each(i, msg), jetstream.WithExpectStream(ledgerStream)); err != nil {
			tb.Fatalf("forge seq %d: %v", m.Seq, err)
		}
	}
	for _, m := range aud {
		msg := nats.NewMsg(m.Subject)
		msg.Data = m.Body
		msg.Header.Set(TypeHeader, m.Type)
		msg.Header.Set(PrevHeader, m.Prev)
		if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(m.MsgID), jetstream.WithExpectStream(auditStream)); err != nil {
			tb.Fatalf("forge audit seq %d: %v", m.Seq, err)
		}
	}
	closeWithWitness(tb, s, src, dir)
	return dir
}

// BenchmarkLinkFrame: what publishing a key creation in a link frame
// (linkMsg) and reading its link back (rawMessage, then the chain's next
// value) cost, against the headers.
func BenchmarkLinkFrame(b *testing.B) {
	ev := keyCreatedEvent(b, "tenant-a", "bucket-key", "c4f9545dadd78423444ce8c3f0892a39")
	msg := newMsg(ev, deflateEvent(mustEncode(b, ev), ""))
	msg.Header.Set(nats.MsgIdHdr, ScopedMsgID(ev.Aggregate, ev.CommandID))
	prev := Sum{9}
	msg.Header.Set(PrevHeader, prev.String())
	linked := linkMsg(msg, prev)
	for _, c := range []struct {
		name string
		msg  *nats.Msg
	}{{"link", linked}, {"headers", msg}} {
		b.Run("store/"+c.name, func(b *testing.B) {
			for b.Loop() {
				if c.name == "link" {
					linkMsg(msg, prev)
				} else {
					msg.Header.Set(PrevHeader, prev.String())
				}
			}
		})
		b.Run("read/"+c.name, func(b *testing.B) {
			for b.Loop() {
				raw := rawMessage(ledgerStream, 7, c.msg.Subject, c.msg.Header, c.msg.Data)
				if p, ok := parseSum(raw.Prev); !ok || p != prev {
					b.Fatal("no link")
				}
				chainNext(prev, raw.Leaf())
			}
		})
	}
}

// TestDecodeMessageRefusesTwoForms: a consumed message holding a link
// frame and a Prev or Type header is malformed for the readers that do
// not check the chain too (Replay, Subscribe, Lookup), as for the chain.
func TestDecodeMessageRefusesTwoForms(t *testing.T) {
	t.Parallel()
	ev := keyCreatedEvent(t, "e1", "k", "c4f9545dadd78423444ce8c3f0892a39")
	msg := newMsg(ev, deflateEvent(mustEncode(t, ev), ""))
	framed := linkMsg(msg, Sum{4})
	if got, err := decodeMessage(framed.Header, framed.Data, "", 5); err != nil || got.ID != ev.ID {
		t.Fatalf("decodeMessage(link frame) = %v, %v", got.ID, err)
	}
	for _, h := range []string{PrevHeader, TypeHeader} {
		hdr := nats.Header{h: {"x"}}
		if _, err := decodeMessage(hdr, framed.Data, "", 5); !errors.Is(err, ErrMalformed) {
			t.Errorf("a link frame with a %s header: err = %v, want ErrMalformed", h, err)
		}
	}
}
