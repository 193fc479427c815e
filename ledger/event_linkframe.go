package ledger

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
)

// The server stores a message's headers as text beside it: on a single
// node the Kmsledger-Prev header (the chain value before the link, 64 hex
// digits) and the Kmsledger-Type header took 82 and 32 of the 487 bytes
// a key creation cost in LEDGER. A single node stores them in the body
// instead, as a link frame around the stored body: linkFrameMagic, the
// chain value as its 32 bytes, the type as a string (empty when the body
// is a key frame, whose flags name the type), then the body as it was
// stored before (a key frame, an S2 frame, JSON, an AUDIT batch). 36
// bytes for a key creation instead of 114 (BENCHMARKS.md, "The chain
// link in the body").
//
// A link frame is read back into the RawMessage its headers gave
// (rawMessage): the same Type, Prev and stored body, so the chain, its
// checks, exports and backups are what they were. Nothing nests: a body
// inside a link frame that is one again is malformed, and so is a link
// frame on a message that also has either header (one stored form per
// link). Nodes of a cluster keep the headers, as they keep JSON.

// linkFrameMagic starts every link frame: a NUL, 'l', the layout's
// version.
const linkFrameMagic = "\x00l\x01"

// linkFrameOverhead is the size of a link frame around a body, but the
// type's length and bytes.
const linkFrameOverhead = len(linkFrameMagic) + len(Sum{})

// isLinkFrame reports whether a stored body is a link frame.
func isLinkFrame(body []byte) bool { return strings.HasPrefix(string(body), linkFrameMagic) }

// keyFrameType returns the type a key frame's flags name, or false if
// body is no key frame.
func keyFrameType(body []byte) (string, bool) {
	if len(body) <= len(keyFrameMagic) || !isKeyFrame(body) {
		return "", false
	}
	if body[len(keyFrameMagic)]&keyFrameImported != 0 {
		return TypeKeyImported, true
	}
	return TypeKeyCreated, true
}

// wire returns msg as it is published after the link whose chain value
// is prev: in a link frame on a single node (linkMsg), else as it is,
// either way without the headers the head does not send (unsent,
// chain_recent.go). msg is not changed.
func (c *chainHead) wire(msg *nats.Msg, prev Sum) *nats.Msg {
	drop := c.unsent(msg)
	if c.linked {
		return linkMsg(msg, prev, drop...)
	}
	return withoutHeaders(msg, nil, drop)
}

// withoutHeaders returns a copy of msg with data (msg's if nil) and
// without the headers named in drop, or msg itself if there is nothing
// to change.
func withoutHeaders(msg *nats.Msg, data []byte, drop []string) *nats.Msg {
	if data == nil {
		if len(drop) == 0 {
			return msg
		}
		data = msg.Data
	}
	out := &nats.Msg{Subject: msg.Subject, Data: data, Header: make(nats.Header, len(msg.Header))}
	for k, v := range msg.Header {
		if !slices.Contains(drop, k) {
			out.Header[k] = v
		}
	}
	return out
}

// linkMsg returns the message a single node publishes for msg as the link
// after prev: msg with the Prev and Type headers moved into a link frame,
// and without the headers named in drop. It returns msg with its Type and
// Prev headers (and only without drop) if msg has no type, a type a
// link frame cannot hold as it is, or a body that is a link frame
// already. msg is not changed: it may be published again, alone.
func linkMsg(msg *nats.Msg, prev Sum, drop ...string) *nats.Msg {
	typ := msg.Header.Get(TypeHeader)
	if typ == "" || isLinkFrame(msg.Data) || len(msg.Header.Values(TypeHeader)) != 1 ||
		len(typ) > maxIDLen || !frameText(typ) {
		return withoutHeaders(msg, nil, drop)
	}
	if kt, ok := keyFrameType(msg.Data); ok {
		if kt != typ {
			return withoutHeaders(msg, nil, drop)
		}
		typ = "" // the key frame names it
	}
	f := make([]byte, 0, linkFrameOverhead+1+len(typ)+len(msg.Data))
	f = append(append(f, linkFrameMagic...), prev[:]...)
	f = append(appendFrameString(f, typ), msg.Data...)
	return withoutHeaders(msg, f, append([]string{TypeHeader, PrevHeader}, drop...))
}

// parseLinkFrame returns the chain value, the type and the stored body of
// a link frame.
func parseLinkFrame(f []byte) (prev Sum, typ string, body []byte, err error) {
	if !isLinkFrame(f) {
		return Sum{}, "", nil, fmt.Errorf("%w: not a link frame", errEventFrame)
	}
	r := frameReader{b: f[len(linkFrameMagic):], kind: "link frame"}
	copy(prev[:], r.bytes(len(prev)))
	t := r.str()
	switch {
	case r.err != nil:
		return Sum{}, "", nil, r.err
	case len(t) > maxIDLen:
		return Sum{}, "", nil, fmt.Errorf("%w: link frame type of %d bytes", errEventFrame, len(t))
	case isLinkFrame(r.b):
		return Sum{}, "", nil, fmt.Errorf("%w: link frame in a link frame", errEventFrame)
	}
	kt, key := keyFrameType(r.b)
	switch {
	case len(t) == 0 && !key:
		return Sum{}, "", nil, fmt.Errorf("%w: link frame without a type", errEventFrame)
	case len(t) != 0 && key:
		return Sum{}, "", nil, fmt.Errorf("%w: link frame names a key frame's type", errEventFrame) // one frame per link
	case key:
		return prev, kt, r.b, nil
	}
	return prev, string(t), r.b, nil
}

// hasLinkHeaders reports whether h holds a Prev or Type header, which a
// message stored in a link frame must not.
func hasLinkHeaders(h nats.Header) bool {
	return len(h.Values(TypeHeader)) != 0 || len(h.Values(PrevHeader)) != 0
}

// rawMessage is the RawMessage of a stored message of stream: from its
// headers, or from its link frame. A link frame that does not parse, or
// one on a message that also has a Prev or Type header, is kept as the
// body, without Type and Prev from it: Plain refuses it, so the chain
// check reports the message (as for any changed message).
func rawMessage(stream string, seq uint64, subject string, h nats.Header, data []byte) RawMessage {
	m := RawMessage{Stream: stream, Seq: seq, Subject: subject, Body: data,
		Type: h.Get(TypeHeader), MsgID: h.Get(nats.MsgIdHdr), Prev: h.Get(PrevHeader)}
	if !isLinkFrame(data) || hasLinkHeaders(h) {
		return m
	}
	prev, typ, body, err := parseLinkFrame(data)
	if err != nil {
		return m
	}
	m.Type, m.Prev, m.Body = typ, prev.String(), body
	return m
}

// decodeMessage decodes a stored LEDGER message (its headers and body)
// as decodeEvent does, and refuses a link frame beside a Prev or Type
// header as rawMessage does (one stored form per link).
func decodeMessage(h nats.Header, data []byte, subject string, seq uint64) (Event, error) {
	if isLinkFrame(data) && hasLinkHeaders(h) {
		return Event{}, fmt.Errorf("%w at seq %d: a link frame and a %s or %s header", ErrMalformed, seq, PrevHeader, TypeHeader)
	}
	return decodeEvent(data, subject, seq)
}

// unlinkedBody returns the stored body inside a link frame, or body as it
// is if it is none.
func unlinkedBody(body []byte) ([]byte, error) {
	if !isLinkFrame(body) {
		return body, nil
	}
	_, _, inner, err := parseLinkFrame(body)
	return inner, err
}
