package wire

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{"7d": 7 * 24 * time.Hour, "0d": 0, "36h": 36 * time.Hour, "3650d": 3650 * 24 * time.Hour}
	for s, want := range good {
		if got, err := ParseDuration(s); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = (%v, %v), want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "d", "-1d", "3651d", "1.5d", "7 d", "x"} {
		if _, err := ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%q) err = nil, want an error", s)
		}
	}
}
