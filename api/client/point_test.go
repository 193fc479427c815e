package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
)

// TestParsePointAt: every form a person gives, relative to now; a zero
// sequence, a non-positive or garbled duration, too many days and words
// are refused with ErrInvalidPoint.
func TestParsePointAt(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	good := []struct {
		in   string
		want client.Point
	}{
		{"", client.Point{}},
		{"42", client.Point{Seq: 42}},
		{"now", client.Point{Time: now}},
		{"-36h", client.Point{Time: now.Add(-36 * time.Hour)}},
		{"-7d", client.Point{Time: now.Add(-7 * 24 * time.Hour)}},
		{"-3650d", client.Point{Time: now.Add(-3650 * 24 * time.Hour)}},
		{"2025-03-01", client.Point{Time: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}},
		{"2025-03-01T10:00:00+02:00", client.Point{Time: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)}},
	}
	for _, tt := range good {
		got, err := client.ParsePointAt(tt.in, now)
		if err != nil || got.Seq != tt.want.Seq || !got.Time.Equal(tt.want.Time) {
			t.Errorf("ParsePointAt(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"0", "-0s", "-0d", "-x", "-1d1", "-3651d", "--1h", "-", "yesterday", "2025-13-01", "18446744073709551616"} {
		if got, err := client.ParsePointAt(in, now); !errors.Is(err, client.ErrInvalidPoint) {
			t.Errorf("ParsePointAt(%q) = %+v, %v; want ErrInvalidPoint", in, got, err)
		}
	}
}
