package ledger

import (
	"encoding/json"
	"strconv"
)

// Decoding a replay's events is most of its CPU with encoding/json (it
// validates a body, then decodes it, then validates and decodes the
// payload again). An envelope and the payloads replayed most are read
// here in one pass when they are exactly as json.Marshal writes them (the
// keys in order, no space, strings of printable ASCII without escapes);
// anything else, however valid, goes to encoding/json. Both give the same
// result for every input (FuzzFastEvent, FuzzFastKeyCreated).

// canon reads a JSON object as json.Marshal writes it. Once a read fails,
// ok is false and every later read fails.
type canon struct {
	b  []byte
	i  int
	ok bool
}

func newCanon(b []byte) *canon { return &canon{b: b, ok: true} }

// open reads the opening brace (at the start) or the comma before the
// next key.
func (c *canon) open() {
	want := byte(',')
	if c.i == 0 {
		want = '{'
	}
	c.byte(want)
}

// byte reads b.
func (c *canon) byte(b byte) {
	if !c.ok || c.i >= len(c.b) || c.b[c.i] != b {
		c.ok = false
		return
	}
	c.i++
}

// key reads the opening brace or a comma (open), then "name":.
func (c *canon) key(name string) {
	c.open()
	if q := c.quoted(); c.ok && string(q[1:len(q)-1]) != name {
		c.ok = false
	}
	c.byte(':')
}

// str reads the key name and its string value (see quoted).
func (c *canon) str(name string) string {
	c.key(name)
	q := c.quoted()
	if !c.ok {
		return ""
	}
	return string(q[1 : len(q)-1])
}

// number reads the key name and its value, an unsigned decimal (see
// uint32).
func (c *canon) number(name string) uint32 {
	c.key(name)
	return c.uint32()
}

// quoted reads a string value whose bytes are its value: printable
// ASCII but the quote and the backslash. It returns it with its quotes.
func (c *canon) quoted() []byte {
	if !c.ok || c.i >= len(c.b) || c.b[c.i] != '"' {
		c.ok = false
		return nil
	}
	for j := c.i + 1; j < len(c.b); j++ {
		switch b := c.b[j]; {
		case b == '"':
			q := c.b[c.i : j+1]
			c.i = j + 1
			return q
		case b < 0x20 || b > 0x7e || b == '\\':
			c.ok = false
			return nil
		}
	}
	c.ok = false
	return nil
}

// uint32 reads an unsigned decimal without a leading zero that fits 32
// bits.
func (c *canon) uint32() uint32 {
	j := c.i
	for j < len(c.b) && c.b[j] >= '0' && c.b[j] <= '9' {
		j++
	}
	if !c.ok || j == c.i || (c.b[c.i] == '0' && j > c.i+1) {
		c.ok = false
		return 0
	}
	v, err := strconv.ParseUint(string(c.b[c.i:j]), 10, 32)
	if err != nil {
		c.ok = false
		return 0
	}
	c.i = j
	return uint32(v)
}

// end reads the closing brace, which must be the last byte.
func (c *canon) end() bool {
	c.ok = c.ok && c.i == len(c.b)-1 && c.b[c.i] == '}'
	return c.ok
}

// flatObject reports whether b is an object as json.Marshal writes one
// whose values are strings (see quoted) or unsigned decimals: then it is
// valid JSON without encoding/json's scan.
func flatObject(b []byte) bool {
	if len(b) < 2 || b[0] != '{' {
		return false
	}
	if len(b) == 2 {
		return b[1] == '}'
	}
	c := newCanon(b)
	for c.ok && c.i < len(b)-1 {
		c.open()
		c.quoted() // a key
		c.byte(':')
		if c.ok && c.i < len(b) && b[c.i] == '"' {
			c.quoted()
		} else {
			c.uint32()
		}
	}
	return c.end()
}

// fastEvent decodes an envelope written by json.Marshal (see canon); ok
// is false for anything else.
func fastEvent(b []byte) (ev Event, ok bool) {
	c := newCanon(b)
	ev.Type = c.str("type")
	ev.ID = c.str("id")
	c.key("time")
	if t := c.quoted(); c.ok && ev.Time.UnmarshalJSON(t) != nil {
		return Event{}, false
	}
	ev.Actor = c.str("actor")
	ev.Enclave = c.str("enclave")
	ev.Aggregate = c.str("aggregate")
	ev.CommandID = c.str("command_id")
	c.key("payload")
	if !c.ok || len(b) < c.i+3 || b[c.i] != '{' || b[len(b)-2] != '}' || b[len(b)-1] != '}' {
		return Event{}, false
	}
	p := b[c.i : len(b)-1]
	if !flatObject(p) && !json.Valid(p) {
		return Event{}, false
	}
	ev.Payload = append(json.RawMessage(nil), p...)
	return ev, true
}

// DecodePayload decodes an event's payload into p, as json.Unmarshal
// would; faster for a key.created.v1 payload written by json.Marshal.
func DecodePayload[T any](raw json.RawMessage, p *T) error {
	if k, ok := any(p).(*KeyCreated); ok && fastKeyCreated(raw, k) {
		return nil
	}
	return json.Unmarshal(raw, p)
}

// fastKeyCreated decodes a key.created.v1 payload written by json.Marshal
// (see canon) into p; false, with p untouched, for anything else.
func fastKeyCreated(b []byte, p *KeyCreated) bool {
	c := newCanon(b)
	k := KeyCreated{Name: c.str("name"), Version: c.number("version"), Type: c.str("type"),
		SecretRef: c.str("secret_ref"), Fingerprint: c.str("fingerprint")}
	if !c.end() {
		return false
	}
	k.Source = p.Source // absent: left alone, as json.Unmarshal does
	*p = k
	return true
}
