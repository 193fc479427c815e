package config

import (
	"strings"
	"testing"
)

// TestParseMemoryLimit: GOMEMLIMIT's syntax, at least 64 MiB, or off; a
// missing or unknown unit, a fraction, a sign, a space, an overflow and a
// tiny limit are refused with the value in the error.
func TestParseMemoryLimit(t *testing.T) {
	good := map[string]int64{
		"":           0,
		"off":        -1,
		"1GiB":       1 << 30,
		"1073741824": 1 << 30,
		"64MiB":      64 << 20,
		"65536KiB":   64 << 20,
		"2TiB":       2 << 40,
		"900000000B": 900000000,
	}
	for s, want := range good {
		if got, err := ParseMemoryLimit(s); err != nil || got != want {
			t.Errorf("ParseMemoryLimit(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"1G", "1GB", "1.5GiB", "-1", "+1GiB", " 1GiB", "1GiB ", "GiB", "63MiB", "1024", "0",
		"9999999999TiB", "99999999999999999999", "off ", "OFF", "1gib"} {
		if got, err := ParseMemoryLimit(s); err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("ParseMemoryLimit(%q) = %d, %v; want an error naming it", s, got, err)
		}
	}
}

// TestConfigMemoryLimit: memory.limit is read from the file and checked
// with the rest of it.
func TestConfigMemoryLimit(t *testing.T) {
	c, err := Read(strings.NewReader("version: v1\nmemory: {limit: 2GiB}\n"), nil)
	if err != nil || c.Memory.Limit != "2GiB" {
		t.Fatalf("Read memory.limit 2GiB = %+v, %v", c, err)
	}
	if _, err := Read(strings.NewReader("version: v1\nmemory: {limit: 2GB}\n"), nil); err == nil || !strings.Contains(err.Error(), "memory.limit") {
		t.Fatalf("Read memory.limit 2GB err = %v, want an error naming memory.limit", err)
	}
}
