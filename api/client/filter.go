package client

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrInvalidResult is wrapped by CheckResult errors.
var ErrInvalidResult = errors.New("client: invalid request result: want ok, denied, error or an HTTP status")

// CheckResult reports whether s is a valid RequestFilter.Result: "" (any),
// ResultOK, ResultDenied, ResultError, or an HTTP status 100 to 599.
func CheckResult(s string) error {
	switch s {
	case "", ResultOK, ResultDenied, ResultError:
		return nil
	}
	if n, err := strconv.Atoi(s); err != nil || n < 100 || n > 599 {
		return fmt.Errorf("%w: %q", ErrInvalidResult, s)
	}
	return nil
}
