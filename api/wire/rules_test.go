package wire

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseRulesCanonicalises(t *testing.T) {
	got, err := ParseRules(map[string][]string{
		"key:decrypt": {"b*", "a", ""},
		"KEY:DECRYPT": {"a", "h1:x*"},
		"Key:List":    {"*"},
		"POLICY:GET":  {""}, // only empty patterns: the rule set goes
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"KEY:DECRYPT": {"a", "b*", "h1:x*"}, "KEY:LIST": {"*"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseRules = %v, want %v", got, want)
	}
	again, err := ParseRules(got)
	if err != nil || !reflect.DeepEqual(again, got) {
		t.Fatalf("ParseRules(ParseRules(x)) = %v, %v; want %v", again, err, got)
	}
	if got, err := ParseRules(nil); got != nil || err != nil {
		t.Fatalf("ParseRules(nil) = %v, %v", got, err)
	}
}

func TestParseRulesRefusesUnknownCommands(t *testing.T) {
	for _, name := range []string{"KEY:DECRYPTT", "", "KEY", "KEY:*", strings.Repeat("X", 10000)} {
		_, err := ParseRules(map[string][]string{"KEY:GENERATE": {"*"}, name: {"*"}})
		if !errors.Is(err, ErrUnknownCommand) {
			t.Fatalf("ParseRules(%.20q) err = %v, want ErrUnknownCommand", name, err)
		}
		if len(err.Error()) > 200 {
			t.Fatalf("error of %d bytes echoes the whole input", len(err.Error()))
		}
	}
	_, err := ParseRules(map[string][]string{"KEY:DECRYPTT": {"*"}})
	if err == nil || !strings.Contains(err.Error(), `"KEY:DECRYPTT"`) {
		t.Fatalf("err = %v, want it to name KEY:DECRYPTT", err)
	}
}

func TestParseRulesRefusesBadPatterns(t *testing.T) {
	for _, p := range []string{"a*b", "**", "*a", "a b", "a.b", "a/b*", "?", "[a]", strings.Repeat("a", 81), "é"} {
		if _, err := ParseRules(map[string][]string{"KEY:DECRYPT": {p}}); !errors.Is(err, ErrInvalidPattern) {
			t.Errorf("pattern %q: err = %v, want ErrInvalidPattern", p, err)
		}
	}
	for _, p := range []string{"*", "a", "a*", "minio-*", "h1:1XtC8x9-VpkRibo1WuzcIAXzrpKIxLjlMErH9zkZkQE", strings.Repeat("a", 80), strings.Repeat("a", 80) + "*"} {
		if _, err := ParseRules(map[string][]string{"KEY:DECRYPT": {p}}); err != nil {
			t.Errorf("pattern %q: err = %v, want accepted", p, err)
		}
	}
}

func TestCanonicalRulesKeepsOldRules(t *testing.T) {
	got := CanonicalRules(map[string][]string{"key:decrypt": {"x", ""}, "KEY:DECRYPTT": {"*"}, "KEY:DECRYPT": {"a", "x"}})
	want := map[string][]string{"KEY:DECRYPT": {"a", "x"}, "KEY:DECRYPTT": {"*"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("CanonicalRules = %v, want %v", got, want)
	}
}
