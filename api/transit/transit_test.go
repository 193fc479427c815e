package transit_test

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/transit"
)

func TestParseFields(t *testing.T) {
	for _, body := range []string{"", "null", "  {}  "} {
		f, err := transit.Parse([]byte(body), nil)
		if err != nil || len(f) != 0 {
			t.Errorf("Parse(%q) = %v, %v, want {}", body, f, err)
		}
	}
	for _, body := range []string{"[]", "1", `"x"`, "{", `{} {}`, `{"a":1}x`} {
		if f, err := transit.Parse([]byte(body), nil); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", body, f)
		}
	}
	// The vault CLI sends every value as a string.
	f, err := transit.Parse([]byte(`{"derived":"true","n":"12","d":"1h","s":5,"b":true,"z":"0"}`), url.Values{"list": {"true"}, "q": {"v"}, "n": {"99"}})
	if err != nil {
		t.Fatal(err)
	}
	if b, ok, err := f.Bool("derived"); !b || !ok || err != nil {
		t.Errorf(`Bool("derived") = %v, %v, %v`, b, ok, err)
	}
	if b, ok, err := f.Bool("z"); b || !ok || err != nil {
		t.Errorf(`Bool("z") = %v, %v, %v, want false`, b, ok, err)
	}
	if n, ok, err := f.Int("n"); n != 12 || !ok || err != nil {
		t.Errorf(`Int("n") = %v, %v, %v, want 12 (the body wins over the query)`, n, ok, err)
	}
	if d, ok, err := f.Duration("d"); d != time.Hour || !ok || err != nil {
		t.Errorf(`Duration("d") = %v, %v, %v`, d, ok, err)
	}
	if d, _, err := f.Duration("s"); d != 5*time.Second || err != nil {
		t.Errorf(`Duration("s") = %v, %v`, d, err)
	}
	if s, _, err := f.String("s"); s != "5" || err != nil {
		t.Errorf(`String("s") = %q, %v`, s, err)
	}
	if s, _, _ := f.String("q"); s != "v" || f.Has("list") {
		t.Errorf("query: q = %q, list present %v; want q = v and no list", s, f.Has("list"))
	}
	if _, _, err := f.Int("b"); err == nil {
		t.Error(`Int("b") of true: want an error`)
	}
	if _, ok, err := f.Bool("absent"); ok || err != nil {
		t.Errorf(`Bool("absent") = %v, %v`, ok, err)
	}
}

func TestCiphertextText(t *testing.T) {
	s := transit.FormatCiphertext(3, []byte{1, 2, 3})
	if s != "vault:v3:AQID" {
		t.Fatalf("FormatCiphertext = %s", s)
	}
	v, enc, err := transit.SplitCiphertext(s)
	if v != 3 || enc != "AQID" || err != nil {
		t.Fatalf("SplitCiphertext = %d, %q, %v", v, enc, err)
	}
	if v, _, _ := transit.SplitCiphertext("vault:v0:AQID"); v != 1 {
		t.Errorf("version 0 read as %d, want 1", v)
	}
	for in, want := range map[string]error{
		"v1:abc": transit.ErrNoPrefix, "vault:v1": transit.ErrFields, "vault:vX:abc": transit.ErrVersionDecode,
		"vault:v:abc": transit.ErrVersionDecode, "vault:v+1:abc": transit.ErrVersionDecode, "vault:v99999999999:a": transit.ErrVersionDecode,
	} {
		if _, _, err := transit.SplitCiphertext(in); !errors.Is(err, want) {
			t.Errorf("SplitCiphertext(%q) err = %v, want %v", in, err, want)
		}
	}
	if _, err := transit.DecodeBody("!!"); !errors.Is(err, transit.ErrBase64) {
		t.Errorf("DecodeBody(!!) err = %v", err)
	}
	if _, _, err := transit.ParseHMAC("hmac"); err == nil || err.Error() != "invalid HMAC to verify: no prefix" {
		t.Errorf("ParseHMAC err = %v", err)
	}
	if string(transit.ErrorBody()) != `{"errors":[]}` {
		t.Errorf("ErrorBody() = %s", transit.ErrorBody())
	}
}

func FuzzSplitCiphertext(f *testing.F) {
	f.Add("vault:v1:AAAA")
	f.Add("vault:v0:")
	f.Fuzz(func(t *testing.T, s string) {
		v, enc, err := transit.SplitCiphertext(s)
		if err == nil && (v == 0 || transit.FormatCiphertext(v, nil)[:len("vault:v")] != "vault:v" || len(enc) > len(s)) {
			t.Fatalf("SplitCiphertext(%q) = %d, %q", s, v, enc)
		}
	})
}
