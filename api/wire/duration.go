package wire

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxDurationDays bounds a duration given in days ("7d").
const MaxDurationDays = 3650

// ParseDuration is time.ParseDuration that also accepts whole days ("7d",
// at most MaxDurationDays): the durations of the admin API's
// schedule-deletion and of the CLI's relative points in time.
func ParseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > MaxDurationDays {
			return 0, fmt.Errorf("wire: invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
