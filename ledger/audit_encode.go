package ledger

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendRecord appends r as one line of compact JSON, as encoding/json
// would encode it (same fields, order and omissions; strings coerced to
// valid UTF-8), without reflection or allocations: it runs once per API
// request. TestAppendRecordIsJSON holds it to encoding/json.
func appendRecord(b []byte, r *AuditRecord) []byte {
	b = append(b, `{"time":`...)
	b = appendTime(b, r.Time)
	b = appendField(b, "node", r.Node, false)
	b = appendField(b, "identity", r.Identity, true)
	b = appendField(b, "enclave", r.Enclave, true)
	b = appendField(b, "method", r.Method, false)
	b = appendField(b, "path", r.Path, false)
	b = appendField(b, "route", r.Route, true)
	if len(r.Items) > 0 {
		b = append(b, `,"items":[`...)
		for i := range r.Items {
			it := &r.Items[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"command":`...)
			b = appendString(b, it.Command)
			b = appendField(b, "key", it.Key, true)
			if it.Version != 0 {
				b = append(b, `,"version":`...)
				b = strconv.AppendUint(b, uint64(it.Version), 10)
			}
			b = appendField(b, "ad_sha256", it.ADSHA256, true)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = appendField(b, "error", r.Error, true)
	b = append(b, `,"duration_us":`...)
	b = strconv.AppendInt(b, r.Duration, 10)
	b = appendField(b, "client", r.Client, false)
	return append(b, '}')
}

// appendField appends ,"name":"value" (nothing if omitEmpty and value is "").
func appendField(b []byte, name, value string, omitEmpty bool) []byte {
	if omitEmpty && value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

// appendTime appends t as encoding/json does (RFC 3339 with nanoseconds).
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
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
