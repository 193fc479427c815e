package client

import (
	"fmt"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
)

// ParsePointAt reads a point of the ledger as a person gives it: what
// ParsePoint reads (a sequence number or an RFC 3339 time), a date
// (2006-01-02, UTC), "now", or a time before now ("-36h", "-7d"; a
// positive duration, at most 3650 days). "" gives the zero Point. Errors
// wrap ErrInvalidPoint.
func ParsePointAt(s string, now time.Time) (Point, error) {
	switch {
	case s == "":
		return Point{}, nil
	case s == "now":
		return Point{Time: now}, nil
	case strings.HasPrefix(s, "-"):
		d, err := wire.ParseDuration(s[1:])
		if err != nil || d <= 0 {
			return Point{}, fmt.Errorf("%w: %q is no positive duration", ErrInvalidPoint, s)
		}
		return Point{Time: now.Add(-d)}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return Point{Time: t}, nil
	}
	return ParsePoint(s)
}
