package wire

import (
	"math"
	"slices"
	"sort"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrMalformed is wrapped by every UnmarshalProto error: truncated or
// otherwise invalid protobuf, or a string field that is not valid UTF-8.
var ErrMalformed = newClientError("malformed message")

// Message is implemented by every request and response message of the
// protocol.
type Message interface {
	// MarshalProto returns the proto3 binary encoding of the message.
	MarshalProto() []byte
	// UnmarshalProto resets the message and decodes b into it.
	UnmarshalProto(b []byte) error
}

// ---- encoding ---------------------------------------------------------------

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// appendMessage appends an embedded message; it is written even when empty,
// as proto3 does for a set message field.
func appendMessage(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

func appendUint64(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendUint32(b []byte, num protowire.Number, v uint32) []byte {
	return appendUint64(b, num, uint64(v))
}

func appendInt64(b []byte, num protowire.Number, v int64) []byte {
	return appendUint64(b, num, uint64(v))
}

func appendSint64(b []byte, num protowire.Number, v int64) []byte {
	return appendUint64(b, num, protowire.EncodeZigZag(v))
}

func appendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return appendUint64(b, num, 1)
}

// appendTime appends t as a google.protobuf.Timestamp {1 seconds int64,
// 2 nanos int32}. The zero time is omitted.
func appendTime(b []byte, num protowire.Number, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	var ts []byte
	ts = appendInt64(ts, 1, t.Unix())
	ts = appendInt64(ts, 2, int64(t.Nanosecond()))
	return appendMessage(b, num, ts)
}

// appendDuration appends d as a google.protobuf.Duration {1 seconds int64,
// 2 nanos int32}, both with the sign of d. Zero is omitted.
func appendDuration(b []byte, num protowire.Number, d time.Duration) []byte {
	if d == 0 {
		return b
	}
	var m []byte
	m = appendInt64(m, 1, int64(d/time.Second))
	m = appendInt64(m, 2, int64(d%time.Second))
	return appendMessage(b, num, m)
}

// appendStringMap appends a map<string,string> in key order. Map entries
// always carry both key and value, as protobuf-go writes them.
func appendStringMap(b []byte, num protowire.Number, m map[string]string) []byte {
	for _, k := range sortedKeys(m) {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, k)
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendString(e, m[k])
		b = appendMessage(b, num, e)
	}
	return b
}

// appendUint32StringMap appends a map<uint32,string> in key order.
func appendUint32StringMap(b []byte, num protowire.Number, m map[uint32]string) []byte {
	for _, k := range sortedKeys(m) {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.VarintType)
		e = protowire.AppendVarint(e, uint64(k))
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendString(e, m[k])
		b = appendMessage(b, num, e)
	}
	return b
}

// appendRuleSets appends a map<string,RuleSet>. In Go a rule set is the list
// of its patterns; on the wire it is RuleSet{1 Rules map<string,Rule>} with
// Rule an empty message.
func appendRuleSets(b []byte, num protowire.Number, m map[string][]string) []byte {
	for _, cmd := range sortedKeys(m) {
		patterns := slices.Clone(m[cmd])
		sort.Strings(patterns)
		patterns = slices.Compact(patterns)
		var rs []byte
		for _, p := range patterns {
			var rule []byte
			rule = protowire.AppendTag(rule, 1, protowire.BytesType)
			rule = protowire.AppendString(rule, p)
			rule = appendMessage(rule, 2, nil)
			rs = appendMessage(rs, 1, rule)
		}
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, cmd)
		e = appendMessage(e, 2, rs)
		b = appendMessage(b, num, e)
	}
	return b
}

// appendPackedUint32 appends a packed repeated uint32 field.
func appendPackedUint32(b []byte, num protowire.Number, v []uint32) []byte {
	if len(v) == 0 {
		return b
	}
	var p []byte
	for _, x := range v {
		p = protowire.AppendVarint(p, uint64(x))
	}
	return appendMessage(b, num, p)
}

func sortedKeys[K string | uint32, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ---- decoding ---------------------------------------------------------------

// field is one decoded field of a message: its number, wire type and value.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64 // varint, fixed32 and fixed64 values
	b   []byte // length-delimited value, aliasing the input
}

// decode calls fn for every field of b in order. Groups are skipped.
func decode(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return refuse(ErrMalformed, "%v", protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.v = uint64(v)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return refuse(ErrMalformed, "field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.StartGroupType {
			continue
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// The accessors below return the field's value, or old when the wire type does
// not match the field's declared type; protobuf-go treats such a field as
// unknown and so does this package.

func (f field) string(old string) (string, error) {
	if f.typ != protowire.BytesType {
		return old, nil
	}
	if !utf8.Valid(f.b) {
		return old, refuse(ErrMalformed, "field %d: invalid UTF-8", f.num)
	}
	return string(f.b), nil
}

func (f field) bytes(old []byte) []byte {
	if f.typ != protowire.BytesType {
		return old
	}
	if len(f.b) == 0 {
		return nil
	}
	return slices.Clone(f.b)
}

func (f field) uint64(old uint64) uint64 {
	if f.typ != protowire.VarintType {
		return old
	}
	return f.v
}

func (f field) uint32(old uint32) uint32 {
	return uint32(f.uint64(uint64(old)))
}

func (f field) int64(old int64) int64 {
	return int64(f.uint64(uint64(old)))
}

func (f field) sint32(old int32) int32 {
	if f.typ != protowire.VarintType {
		return old
	}
	return int32(protowire.DecodeZigZag(f.v & 0xffffffff))
}

func (f field) sint64(old int64) int64 {
	if f.typ != protowire.VarintType {
		return old
	}
	return protowire.DecodeZigZag(f.v)
}

func (f field) bool(old bool) bool {
	if f.typ != protowire.VarintType {
		return old
	}
	return f.v != 0
}

// message returns the embedded message bytes and whether the field is a
// length-delimited one.
func (f field) message() ([]byte, bool) {
	return f.b, f.typ == protowire.BytesType
}

// secNanos decodes the {1 seconds int64, 2 nanos int32} shape that
// google.protobuf.Timestamp and Duration share.
func secNanos(b []byte) (sec, nsec int64, err error) {
	err = decode(b, func(f field) error {
		switch f.num {
		case 1:
			sec = f.int64(sec)
		case 2:
			nsec = int64(int32(f.int64(nsec)))
		}
		return nil
	})
	return sec, nsec, err
}

// time decodes a google.protobuf.Timestamp into a UTC time.
func (f field) time(old time.Time) (time.Time, error) {
	b, ok := f.message()
	if !ok {
		return old, nil
	}
	sec, nsec, err := secNanos(b)
	if err != nil {
		return old, err
	}
	return time.Unix(sec, nsec).UTC(), nil
}

// duration decodes a google.protobuf.Duration. Values outside the range of
// time.Duration saturate.
func (f field) duration(old time.Duration) (time.Duration, error) {
	b, ok := f.message()
	if !ok {
		return old, nil
	}
	sec, nsec, err := secNanos(b)
	if err != nil {
		return old, err
	}
	const maxSec = math.MaxInt64 / int64(time.Second)
	switch {
	case sec > maxSec:
		return math.MaxInt64, nil
	case sec < -maxSec:
		return math.MinInt64, nil
	}
	d, n := time.Duration(sec)*time.Second, time.Duration(nsec)
	switch {
	case n > 0 && d > math.MaxInt64-n:
		return math.MaxInt64, nil
	case n < 0 && d < math.MinInt64-n:
		return math.MinInt64, nil
	}
	return d + n, nil
}

// mapEntry decodes a map entry {1 key, 2 value}, calling key and value for the
// fields present.
func (f field) mapEntry(key, value func(f field) error) (bool, error) {
	b, ok := f.message()
	if !ok {
		return false, nil
	}
	err := decode(b, func(f field) error {
		switch f.num {
		case 1:
			return key(f)
		case 2:
			return value(f)
		}
		return nil
	})
	return err == nil, err
}

// stringMapEntry decodes one entry of a map<string,string> into m.
func (f field) stringMapEntry(m *map[string]string) error {
	var k, v string
	ok, err := f.mapEntry(
		func(f field) (err error) { k, err = f.string(k); return err },
		func(f field) (err error) { v, err = f.string(v); return err },
	)
	if ok {
		if *m == nil {
			*m = make(map[string]string)
		}
		(*m)[k] = v
	}
	return err
}

// uint32StringMapEntry decodes one entry of a map<uint32,string> into m.
func (f field) uint32StringMapEntry(m *map[uint32]string) error {
	var k uint32
	var v string
	ok, err := f.mapEntry(
		func(f field) error { k = f.uint32(k); return nil },
		func(f field) (err error) { v, err = f.string(v); return err },
	)
	if ok {
		if *m == nil {
			*m = make(map[uint32]string)
		}
		(*m)[k] = v
	}
	return err
}

// ruleSetEntry decodes one entry of a map<string,RuleSet> into m; the
// patterns of the rule set are stored sorted.
func (f field) ruleSetEntry(m *map[string][]string) error {
	var cmd string
	var patterns []string
	ok, err := f.mapEntry(
		func(f field) (err error) { cmd, err = f.string(cmd); return err },
		func(f field) error {
			b, ok := f.message()
			if !ok {
				return nil
			}
			// A value field seen twice is merged, as proto does for messages.
			return decode(b, func(f field) error {
				if f.num != 1 {
					return nil
				}
				var p string
				ok, err := f.mapEntry(
					func(f field) (err error) { p, err = f.string(p); return err },
					func(f field) error { // Rule: an empty message; check it parses
						if b, ok := f.message(); ok {
							return decode(b, func(field) error { return nil })
						}
						return nil
					},
				)
				if ok {
					patterns = append(patterns, p)
				}
				return err
			})
		},
	)
	if ok {
		if *m == nil {
			*m = make(map[string][]string)
		}
		sort.Strings(patterns)
		(*m)[cmd] = slices.Compact(patterns)
	}
	return err
}

// packedUint32 decodes a repeated uint32 field, packed or not, appending to v.
func (f field) packedUint32(v []uint32) ([]uint32, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(v, uint32(f.v)), nil
	case protowire.BytesType:
		for b := f.b; len(b) > 0; {
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return v, refuse(ErrMalformed, "field %d: %v", f.num, protowire.ParseError(n))
			}
			v = append(v, uint32(x))
			b = b[n:]
		}
	}
	return v, nil
}

// repeatedString appends the field's string to v.
func (f field) repeatedString(v []string) ([]string, error) {
	if f.typ != protowire.BytesType {
		return v, nil
	}
	s, err := f.string("")
	if err != nil {
		return v, err
	}
	return append(v, s), nil
}
