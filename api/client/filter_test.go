package client_test

import (
	"errors"
	"testing"

	"github.com/kmsledger/kmsledger/api/client"
)

// TestCheckResult: the named results and HTTP statuses pass; anything
// else is refused with ErrInvalidResult.
func TestCheckResult(t *testing.T) {
	for _, s := range []string{"", client.ResultOK, client.ResultDenied, client.ResultError, "100", "404", "599"} {
		if err := client.CheckResult(s); err != nil {
			t.Errorf("CheckResult(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"OK", "99", "600", "-404", "4O4", "ok ", "404x"} {
		if err := client.CheckResult(s); !errors.Is(err, client.ErrInvalidResult) {
			t.Errorf("CheckResult(%q) = %v, want ErrInvalidResult", s, err)
		}
	}
}
