package ledger

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A key creation is most of a ledger (one event a key), and most of its
// S2 frame is hexadecimal and base64 that S2 cannot shrink: the event id,
// the command id, the fingerprint and the actor. A single node stores a
// key.created.v1 or key.imported.v1 event without a source as a key
// frame instead: keyFrameMagic, then those values as the bytes they
// spell, and the rest of the JSON (the names, the aggregate, the secret
// reference) rebuilt from them. About 130 bytes instead of 280
// (BENCHMARKS.md, "Key creations stored as their values").
//
// deflateEvent stores a key frame only if it inflates to the very JSON it
// was made from, byte for byte; any other event, or a key creation in
// another shape (another reference, a non-UTC time, escaped strings), is
// an S2 frame as before. The chain covers the JSON, so a key frame that
// inflates to anything else is a changed message, as for any frame.
//
// The layout after the magic:
//
//	flags     1 byte: keyFrameImported, keyFrameChaCha, keyFrameHexCmd, keyFrameLongRef (layout 2: and keyFrameCmdIsID); the rest 0
//	id        16 bytes: the event id, 32 lower-case hex digits
//	time      8 bytes: Unix nanoseconds, big-endian, shown in UTC
//	actor     32 bytes: "h1:" and these in unpadded base64url
//	version   uvarint, minimal
//	print     32 bytes: the fingerprint, 64 lower-case hex digits
//	command   16 bytes if keyFrameHexCmd (32 lower-case hex digits), else a string
//	enclave   string
//	name      string
//
// where a string is a minimal uvarint length and that many bytes of
// printable ASCII but the quote and the backslash, and nothing follows.
// The aggregate is KeySubject(enclave, name) and the secret reference
// AttemptSecretRef(enclave, name, version, AttemptOf(id)), or with the
// whole id under keyFrameLongRef.
//
// Layout 2 (keyFrameMagic2, written since 2026-12-07) is layout 1 without
// enclave and name: they are the tokens of the message's subject,
// "ledger.<enclave>.key.<name>", which the leaf covers, so a key frame
// of layout 2 is read with its subject (eventJSON's). A creation whose
// command id is its event id (a command without a client's id, in its
// first attempt: commands.Handler.Run) has keyFrameCmdIsID and no
// command field. 40 bytes fewer for a key of 17 characters in an
// enclave of 5.

// keyFrameMagic starts every key frame of layout 1, keyFrameMagic2 of
// layout 2: a NUL, 'k', the layout's version.
const (
	keyFrameMagic  = "\x00k\x01"
	keyFrameMagic2 = "\x00k\x02"
)

// isKeyFrame reports whether a stored body is a key frame of either
// layout.
func isKeyFrame(body []byte) bool {
	return len(body) >= len(keyFrameMagic) && string(body[:2]) == keyFrameMagic[:2] &&
		(body[2] == keyFrameMagic[2] || body[2] == keyFrameMagic2[2])
}

// The flags of a key frame.
const (
	keyFrameImported = 1 << iota // key.imported.v1, else key.created.v1
	keyFrameChaCha               // type ChaCha20, else AES256
	keyFrameHexCmd               // the command id is 16 bytes shown in hex
	keyFrameLongRef              // the secret reference ends in the whole event id (as written before AttemptOf)
	keyFrameCmdIsID              // layout 2: the command id is the event id, not stored again
	keyFrameFlags    = keyFrameImported | keyFrameChaCha | keyFrameHexCmd | keyFrameLongRef
	keyFrameFlags2   = keyFrameFlags | keyFrameCmdIsID
)

// keyFrameFixed is the size of the fields of fixed length.
const keyFrameFixed = 1 + 16 + 8 + 32 + 32

// keyFrameOf returns the key frame of an event's JSON stored on subject
// (layout 2 if subject is the event's aggregate, else layout 1), or false
// if the event has no key frame that inflates to body.
func keyFrameOf(body []byte, subject string) ([]byte, bool) {
	if !bytes.HasPrefix(body, []byte(`{"type":"key.created.v1",`)) && !bytes.HasPrefix(body, []byte(`{"type":"key.imported.v1",`)) {
		return nil, false // not worth parsing
	}
	ev, ok := fastEvent(body)
	var k KeyCreated
	if !ok || !fastKeyCreated(ev.Payload, &k) {
		return nil, false
	}
	var flags byte
	switch ev.Type {
	case TypeKeyCreated:
	case TypeKeyImported:
		flags |= keyFrameImported
	default:
		return nil, false
	}
	switch k.Type {
	case "AES256":
	case "ChaCha20":
		flags |= keyFrameChaCha
	default:
		return nil, false
	}
	onSubject := subject != "" && subject == KeySubject(ev.Enclave, k.Name)
	cmd, hexCmd := lowerHex(ev.CommandID, 16)
	switch {
	case onSubject && ev.CommandID == ev.ID:
		flags |= keyFrameCmdIsID
	case hexCmd:
		flags |= keyFrameHexCmd
	}
	if k.SecretRef == AttemptSecretRef(ev.Enclave, k.Name, k.Version, ev.ID) {
		flags |= keyFrameLongRef // else it must be AttemptOf's: checked below
	}
	id, ok1 := lowerHex(ev.ID, 16)
	fp, ok2 := lowerHex(k.Fingerprint, 32)
	actor, ok3 := h1Bytes(ev.Actor)
	if !ok1 || !ok2 || !ok3 {
		return nil, false
	}
	magic := keyFrameMagic
	if onSubject {
		magic = keyFrameMagic2
	}
	f := append(make([]byte, 0, len(magic)+keyFrameFixed+len(ev.CommandID)+len(ev.Enclave)+len(k.Name)+9), magic...)
	f = append(append(f, flags), id...)
	f = binary.BigEndian.AppendUint64(f, uint64(ev.Time.UnixNano()))
	f = append(f, actor...)
	f = binary.AppendUvarint(f, uint64(k.Version))
	f = append(f, fp...)
	switch {
	case flags&keyFrameCmdIsID != 0:
	case hexCmd:
		f = append(f, cmd...)
	default:
		f = appendFrameString(f, ev.CommandID)
	}
	if !onSubject {
		f = appendFrameString(appendFrameString(f, ev.Enclave), k.Name)
	}
	if plain, err := inflateKeyFrame(f, subject); err != nil || !bytes.Equal(plain, body) {
		return nil, false
	}
	return f, true
}

// keySubjectNames returns the enclave and key name of a key's subject,
// "ledger.<enclave>.key.<name>" with both valid names.
func keySubjectNames(subject string) (enclave, name string, ok bool) {
	rest, ok := strings.CutPrefix(subject, ledgerPrefix)
	if !ok {
		return "", "", false
	}
	enclave, name, ok = strings.Cut(rest, ".key.")
	if !ok || !ValidName(enclave) || !ValidName(name) {
		return "", "", false
	}
	return enclave, name, true
}

// inflateKeyFrame returns the JSON of a key frame stored on subject.
func inflateKeyFrame(f []byte, subject string) ([]byte, error) {
	layout2 := f[2] == keyFrameMagic2[2]
	r := frameReader{b: f[len(keyFrameMagic):], kind: "key frame"}
	flags := r.bytes(1)
	id, at, actor := r.bytes(16), r.bytes(8), r.bytes(32)
	version := r.uvarint()
	fp := r.bytes(32)
	allowed := byte(keyFrameFlags)
	if layout2 {
		allowed = keyFrameFlags2
	}
	var cmd []byte
	cmdIsID := false // stored again although it is the event id
	switch {
	case flags[0]&keyFrameCmdIsID != 0:
		cmd = hex.AppendEncode(make([]byte, 0, 32), id)
	case flags[0]&keyFrameHexCmd != 0:
		raw := r.bytes(16)
		cmdIsID = bytes.Equal(raw, id)
		cmd = hex.AppendEncode(make([]byte, 0, 32), raw)
	default:
		cmd = r.str()
	}
	var enclave, name []byte
	if layout2 {
		e, n, ok := keySubjectNames(subject)
		if !ok {
			return nil, fmt.Errorf("%w: key frame on subject %q, not a key's", errEventFrame, subject)
		}
		enclave, name = []byte(e), []byte(n)
	} else {
		enclave, name = r.str(), r.str()
	}
	switch {
	case r.err != nil:
		return nil, r.err
	case len(r.b) != 0:
		return nil, fmt.Errorf("%w: %d bytes after the key frame", errEventFrame, len(r.b))
	case flags[0]&^allowed != 0 || flags[0]&(keyFrameHexCmd|keyFrameCmdIsID) == keyFrameHexCmd|keyFrameCmdIsID:
		return nil, fmt.Errorf("%w: key frame flags %#x", errEventFrame, flags[0])
	case version > 1<<32-1:
		return nil, fmt.Errorf("%w: key frame version %d", errEventFrame, version)
	}
	if layout2 && cmdIsID {
		return nil, fmt.Errorf("%w: key frame command id not in its short form", errEventFrame) // one frame per event
	}
	if _, ok := lowerHex(string(cmd), 16); ok && flags[0]&(keyFrameHexCmd|keyFrameCmdIsID) == 0 {
		return nil, fmt.Errorf("%w: key frame command id not in its short form", errEventFrame) // one frame per event
	}
	typ, kind := TypeKeyCreated, "AES256"
	if flags[0]&keyFrameImported != 0 {
		typ = TypeKeyImported
	}
	if flags[0]&keyFrameChaCha != 0 {
		kind = "ChaCha20"
	}
	b := make([]byte, 0, 420+2*(len(enclave)+len(name))+len(cmd))
	b = appendKeyField(append(b, '{'), "type", typ)
	b = hex.AppendEncode(append(b, `,"id":"`...), id)
	b = append(b, `","time":"`...)
	b = append(time.Unix(0, int64(binary.BigEndian.Uint64(at))).UTC().AppendFormat(b, time.RFC3339Nano), '"')
	b = base64.RawURLEncoding.AppendEncode(append(b, `,"actor":"h1:`...), actor)
	b = appendKeyField(append(b, `",`...), "enclave", enclave)
	b = append(append(append(append(b, `,"aggregate":"`+ledgerPrefix...), enclave...), ".key."...), name...)
	b = appendKeyField(append(b, `",`...), "command_id", cmd)
	b = appendKeyField(append(b, `,"payload":{`...), "name", name)
	b = strconv.AppendUint(append(b, `,"version":`...), version, 10)
	b = appendKeyField(append(b, ','), "type", kind)
	b = append(append(append(append(append(b, `,"secret_ref":"`...), enclave...), '.'), name...), '.')
	b = append(strconv.AppendUint(b, version, 10), '.')
	if flags[0]&keyFrameLongRef != 0 {
		b = hex.AppendEncode(b, id)
	} else {
		b = base64.RawURLEncoding.AppendEncode(b, id[:8])
	}
	b = hex.AppendEncode(append(b, `","fingerprint":"`...), fp)
	return append(b, `"}}`...), nil
}

// appendKeyField appends "name":"value" to b; value needs no escape (see
// frameReader.str).
func appendKeyField[S string | []byte](b []byte, name string, value S) []byte {
	b = append(append(append(b, '"'), name...), `":"`...)
	return append(append(b, value...), '"')
}

// appendFrameString appends s as a key frame string.
func appendFrameString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// lowerHex decodes s if it is exactly n bytes in lower-case hex.
func lowerHex(s string, n int) ([]byte, bool) {
	b := make([]byte, n)
	return b, DecodeLowerHex(b, s)
}

// DecodeLowerHex decodes s into dst if s is exactly 2*len(dst) lowercase
// hex digits, the form hex.EncodeToString gives; otherwise it reports
// false (dst may then be partly written).
func DecodeLowerHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, lo := lowerHexValue[s[2*i]], lowerHexValue[s[2*i+1]]
		if hi|lo > 0xf {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

// lowerHexValue is the value of each lowercase hex digit and 0xff for
// every other byte. A table, not a comparison per digit: the digits of
// fingerprints are random, and the branches of a comparison were
// mispredicted often enough to make this decode a tenth of a snapshot's
// read (a million fingerprints at each start).
var lowerHexValue = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = byte(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		default:
			t[c] = 0xff
		}
	}
	return t
}()

// h1Bytes decodes an identity "h1:" + unpadded base64url of 32 bytes,
// if it is written exactly so.
func h1Bytes(s string) ([]byte, bool) {
	enc, ok := bytes.CutPrefix([]byte(s), []byte("h1:"))
	b := make([]byte, 32)
	if n, err := base64.RawURLEncoding.Decode(b, enc); !ok || err != nil || n != 32 ||
		base64.RawURLEncoding.EncodeToString(b) != string(enc) {
		return nil, false
	}
	return b, true
}

// frameReader reads a key or link frame's fields; after the first error every
// read returns nothing.
type frameReader struct {
	b    []byte
	err  error
	kind string // "key frame" or "link frame", for errors
}

// bytes reads n bytes.
func (r *frameReader) bytes(n int) []byte {
	if r.err != nil || len(r.b) < n {
		r.fail("cut")
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// uvarint reads a minimal uvarint.
func (r *frameReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || n != len(binary.AppendUvarint(nil, v)) {
		r.fail("bad length or number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// str reads a string: its length, then its bytes, printable ASCII but the
// quote and the backslash (what a JSON string holds as it is).
func (r *frameReader) str() []byte {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.fail("cut string")
	}
	if r.err != nil {
		return nil
	}
	s := r.bytes(int(n))
	if !frameText(s) {
		r.fail("string needs an escape")
		return nil
	}
	return s
}

// frameText reports whether s is what a frame's string may hold:
// printable ASCII but the quote and the backslash.
func frameText[S string | []byte](s S) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// fail records the first error.
func (r *frameReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s: %s", errEventFrame, r.kind, what)
	}
}
