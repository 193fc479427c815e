package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MinMemoryLimit is the smallest memory limit accepted: a smaller one is
// more likely a missing unit than a plan, and the collector would run
// all the time.
const MinMemoryLimit = 64 << 20

// memoryUnits are the suffixes of GOMEMLIMIT, which memory.limit shares.
var memoryUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// ParseMemoryLimit reads a memory limit (memory.limit, --memory-limit) in
// the syntax of GOMEMLIMIT: a number of bytes with an optional suffix B,
// KiB, MiB, GiB or TiB, at least MinMemoryLimit; or "off" for none (-1).
// "" is not set (0).
func ParseMemoryLimit(s string) (int64, error) {
	switch s {
	case "":
		return 0, nil
	case "off":
		return -1, nil
	}
	num, shift := s, uint(0)
	for _, u := range memoryUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = n, u.shift
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 63)
	if err != nil || num == "" || num[0] == '+' {
		return 0, fmt.Errorf("%q: want a number of bytes with an optional unit (B, KiB, MiB, GiB, TiB), e.g. 1GiB, or off", s)
	}
	if n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q: too large", s)
	}
	if b := int64(n) << shift; b >= MinMemoryLimit {
		return b, nil
	}
	return 0, fmt.Errorf("%q: less than %d MiB", s, MinMemoryLimit>>20)
}
