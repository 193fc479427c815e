package api

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestLogPathBounded: a client's path reaches a log line cut to
// maxLogPath bytes, with its length; a short path is kept whole.
func TestLogPathBounded(t *testing.T) {
	short := httptest.NewRequest("GET", "/v1/admin/e/keys/k", nil)
	if got := logPath(short); got != "/v1/admin/e/keys/k" {
		t.Errorf("logPath(short) = %q, want the path", got)
	}
	long := httptest.NewRequest("GET", "/v1/admin/e/keys/"+strings.Repeat("a", 100_000), nil)
	got := logPath(long)
	if len(got) > maxLogPath+32 || !strings.HasSuffix(got, "(100017 bytes)") {
		t.Errorf("logPath(long) = %d bytes ending %q, want at most %d bytes and the length", len(got), got[max(0, len(got)-20):], maxLogPath+32)
	}
}
