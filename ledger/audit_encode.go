package ledger

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxAuditRecord bounds the JSON line of one AuditRecord (without its
// '\n'), whatever the record holds: appendRecord cuts strings and leaves
// out items to stay within it. A batch message (auditMaxMessage) holds at
// least one record, and the embedded server's message limit (1 MiB) is
// far above both.
const MaxAuditRecord = 128 << 10

// Limits of the fields of a record, in bytes of their JSON encoding
// (without the quotes): JSON escaping can make a string six times longer
// ('<' is "\u003c"), so the limit is on what is written, not on the
// input.
const (
	auditMaxNode     = 256
	auditMaxIdentity = 256
	auditMaxEnclave  = 256
	auditMaxMethod   = 64
	auditMaxPath     = 2048
	auditMaxRoute    = 256
	auditMaxError    = 1024
	auditMaxClient   = 256
	auditMaxCommand  = 64
	auditMaxKey      = 256
	auditMaxADSHA256 = 128
	auditMaxReason   = 256
	auditMaxCutField = 32 // AuditCut.Field
	auditMaxCuts     = 16 // AuditCut entries written
	// auditFixedMax bounds everything but the items: the fields above,
	// their names and punctuation, the time and numbers (24 digits each
	// at most), the cut list and the drop marker.
	auditFixedMax = 1024 + auditMaxNode + auditMaxIdentity + auditMaxEnclave + auditMaxMethod + auditMaxPath +
		auditMaxRoute + auditMaxError + auditMaxClient + auditMaxCuts*(auditMaxCutField+40) + auditMaxReason
	// auditMaxItems bounds the encoded items: what is left of
	// MaxAuditRecord.
	auditMaxItems = MaxAuditRecord - auditFixedMax
)

// auditCuts collects what appendRecord cut from one record.
type auditCuts struct {
	list [auditMaxCuts]AuditCut
	n    int
}

func (c *auditCuts) add(field string, n int) {
	for i := range c.n {
		if c.list[i].Field == field {
			c.list[i].Len = max(c.list[i].Len, n)
			return
		}
	}
	if c.n < len(c.list) {
		c.list[c.n] = AuditCut{Field: field, Len: n}
		c.n++
	}
}

// appendRecord appends r as one line of compact JSON, as encoding/json
// would encode it (same fields, order and omissions; strings coerced to
// valid UTF-8), without reflection or allocations: it runs once per API
// request. Fields too long for their limit are cut (at a character
// boundary) and listed in "truncated", after the cuts r itself lists;
// items that do not fit auditMaxItems are left out and counted there. So
// the line never exceeds MaxAuditRecord bytes. TestAppendRecordIsJSON and
// FuzzAppendRecord hold it to encoding/json and to the bound.
func appendRecord(b []byte, r *AuditRecord) []byte {
	var cuts auditCuts
	for _, c := range r.Truncated {
		cuts.add(cutString(c.Field, auditMaxCutField), c.Len)
	}
	b = append(b, `{"time":`...)
	b = appendTime(b, r.Time)
	b = appendField(b, &cuts, "node", r.Node, auditMaxNode, false)
	b = appendField(b, &cuts, "identity", r.Identity, auditMaxIdentity, true)
	b = appendField(b, &cuts, "enclave", r.Enclave, auditMaxEnclave, true)
	b = appendField(b, &cuts, "method", r.Method, auditMaxMethod, false)
	b = appendField(b, &cuts, "path", r.Path, auditMaxPath, false)
	b = appendField(b, &cuts, "route", r.Route, auditMaxRoute, true)
	b = appendItems(b, &cuts, r.Items)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = appendField(b, &cuts, "error", r.Error, auditMaxError, true)
	b = append(b, `,"duration_us":`...)
	b = strconv.AppendInt(b, r.Duration, 10)
	b = appendField(b, &cuts, "client", r.Client, auditMaxClient, false)
	if cuts.n > 0 {
		b = append(b, `,"truncated":[`...)
		for i, c := range cuts.list[:cuts.n] {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"field":`...)
			b = appendString(b, c.Field)
			b = append(b, `,"len":`...)
			b = strconv.AppendInt(b, int64(c.Len), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if d := r.Dropped; d != nil {
		b = append(b, `,"dropped":{"bytes":`...)
		b = strconv.AppendInt(b, int64(d.Bytes), 10)
		b = append(b, `,"reason":`...)
		b = appendString(b, cutString(d.Reason, auditMaxReason))
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendItems appends the "items" field: as many items as fit in
// auditMaxItems bytes, in order.
func appendItems(b []byte, cuts *auditCuts, items []AuditItem) []byte {
	if len(items) == 0 {
		return b
	}
	start := len(b)
	b = append(b, `,"items":[`...)
	n := 0
	for i := range items {
		it := &items[i]
		mark := len(b)
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"command":`...)
		cmd, cut := cutEncoded(it.Command, auditMaxCommand)
		if cut {
			cuts.add("items.command", len(it.Command))
		}
		b = appendString(b, cmd)
		key, keyCut := cutEncoded(it.Key, auditMaxKey)
		if key != "" {
			b = append(b, `,"key":`...)
			b = appendString(b, key)
		}
		if it.Version != 0 {
			b = append(b, `,"version":`...)
			b = strconv.AppendUint(b, uint64(it.Version), 10)
		}
		ad, adCut := cutEncoded(it.ADSHA256, auditMaxADSHA256)
		if adCut {
			cuts.add("items.ad_sha256", len(it.ADSHA256))
		}
		if ad != "" {
			b = append(b, `,"ad_sha256":`...)
			b = appendString(b, ad)
		}
		keyLen := it.KeyLen
		if keyCut {
			keyLen = max(keyLen, len(it.Key))
		}
		if keyLen != 0 {
			b = append(b, `,"key_len":`...)
			b = strconv.AppendInt(b, int64(keyLen), 10)
		}
		b = append(b, '}')
		if len(b)-start+1 > auditMaxItems {
			b = b[:mark]
			cuts.add("items", len(items))
			break
		}
		n++
	}
	if n == 0 {
		return b[:start]
	}
	return append(b, ']')
}

// appendField appends ,"name":"value" (nothing if omitEmpty and value is
// ""), value cut to limit encoded bytes.
func appendField(b []byte, cuts *auditCuts, name, value string, limit int, omitEmpty bool) []byte {
	if omitEmpty && value == "" {
		return b
	}
	v, cut := cutEncoded(value, limit)
	if cut {
		cuts.add(name, len(value))
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

// appendTime appends t as encoding/json does (RFC 3339 with nanoseconds).
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// cutString is cutEncoded without the report.
func cutString(s string, limit int) string {
	s, _ = cutEncoded(s, limit)
	return s
}

// cutEncoded returns the longest prefix of s, ending at a character
// boundary, whose JSON encoding (appendString, without quotes) takes at
// most limit bytes, and whether that is shorter than s.
func cutEncoded(s string, limit int) (string, bool) {
	if 6*len(s) <= limit { // no byte encodes to more than 6
		return s, false
	}
	n := 0
	for i := 0; i < len(s); {
		w, size := encodedRune(s[i:])
		if n+w > limit {
			return s[:i], true
		}
		n += w
		i += size
	}
	return s, false
}

// encodedRune returns how many bytes appendString writes for the first
// character of s (a non-empty string), and how many bytes of s it takes.
func encodedRune(s string) (w, size int) {
	c := s[0]
	if c < utf8.RuneSelf {
		switch {
		case c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&':
			return 1, 1
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
			return 2, 1
		}
		return 6, 1
	}
	r, size := utf8.DecodeRuneInString(s)
	if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
		return 6, size
	}
	return size, size
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string with encoding/json's escaping:
// '"' and '\\', control characters, '<', '>', '&', U+2028 and U+2029 are
// escaped, invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
