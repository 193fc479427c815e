package transit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Fields are the fields of one request (or of one batch item), decoded
// from a JSON object. Getters return ok = false for an absent or null
// field and an error (the client's text) for a value of the wrong kind.
type Fields map[string]any

// Parse decodes a request body and merges the query parameters (every
// value but "list"): an empty body or "null" is {}, anything else must be
// a JSON object. Numbers stay json.Number.
func Parse(body []byte, query url.Values) (Fields, error) {
	f := Fields{}
	body = bytes.TrimSpace(body)
	if len(body) > 0 && !bytes.Equal(body, []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&f); err != nil || f == nil {
			return nil, fmt.Errorf("failed to parse JSON input: the body must be a JSON object")
		}
		if dec.More() {
			return nil, fmt.Errorf("failed to parse JSON input: data after the JSON object")
		}
	}
	for k, vs := range query {
		if k == "list" || len(vs) == 0 {
			continue
		}
		if _, ok := f[k]; !ok {
			f[k] = vs[0]
		}
	}
	return f, nil
}

// String returns a string field; numbers and booleans are converted.
func (f Fields) String(name string) (string, bool, error) {
	v, ok := f[name]
	if !ok || v == nil {
		return "", false, nil
	}
	switch x := v.(type) {
	case string:
		return x, true, nil
	case json.Number:
		return x.String(), true, nil
	case bool:
		return strconv.FormatBool(x), true, nil
	}
	return "", false, fmt.Errorf("field %q: expected a string", name)
}

// Bool returns a boolean field: true/false, or a string strconv.ParseBool
// accepts.
func (f Fields) Bool(name string) (bool, bool, error) {
	v, ok := f[name]
	if !ok || v == nil {
		return false, false, nil
	}
	switch x := v.(type) {
	case bool:
		return x, true, nil
	case string:
		if b, err := strconv.ParseBool(x); err == nil {
			return b, true, nil
		}
	case json.Number:
		if b, err := strconv.ParseBool(x.String()); err == nil {
			return b, true, nil
		}
	}
	return false, false, fmt.Errorf("field %q: expected a boolean", name)
}

// Int returns an integer field: a JSON integer or a numeric string.
func (f Fields) Int(name string) (int64, bool, error) {
	v, ok := f[name]
	if !ok || v == nil {
		return 0, false, nil
	}
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return 0, false, fmt.Errorf("field %q: expected an integer", name)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("field %q: expected an integer", name)
	}
	return n, true, nil
}

// Duration returns a duration field: whole seconds (a number or numeric
// string) or a Go duration string ("1h", "90m").
func (f Fields) Duration(name string) (time.Duration, bool, error) {
	if n, ok, err := f.Int(name); err == nil {
		if n < 0 {
			return 0, false, fmt.Errorf("field %q: negative duration", name)
		}
		return time.Duration(n) * time.Second, ok, nil
	}
	s, _, err := f.String(name)
	if err != nil {
		return 0, false, err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, false, fmt.Errorf("field %q: expected a duration", name)
	}
	return d, true, nil
}

// Base64 returns a field in standard base64 with padding, decoded. The
// error is Go's own text, as Vault sends it.
func (f Fields) Base64(name string) ([]byte, bool, error) {
	s, ok, err := f.String(name)
	if err != nil || !ok {
		return nil, ok, err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, true, err
	}
	return b, true, nil
}

// Items returns the objects of an array field (batch_input); ok is false
// when the field is absent.
func (f Fields) Items(name string) ([]Fields, bool, error) {
	v, ok := f[name]
	if !ok || v == nil {
		return nil, false, nil
	}
	arr, isArr := v.([]any)
	if !isArr {
		return nil, false, fmt.Errorf("field %q: expected an array of objects", name)
	}
	out := make([]Fields, len(arr))
	for i, x := range arr {
		m, isMap := x.(map[string]any)
		if !isMap {
			return nil, false, fmt.Errorf("field %q: item %d is not an object", name, i)
		}
		out[i] = Fields(m)
	}
	return out, true, nil
}

// Has reports whether the field is present and not null.
func (f Fields) Has(name string) bool { v, ok := f[name]; return ok && v != nil }
