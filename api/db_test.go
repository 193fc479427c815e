package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/nodetest"
)

// TestDBUploadLimits: an upload to /v1/db (root only) is refused before
// it is read when its Content-Length is above the limit (413, connection
// closed), when it is shorter than its Content-Length (400), and when it
// is slower than the deadline (408); a random certificate gets 403
// before any of it is read. Nothing of the node changes.
func TestDBUploadLimits(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{Configure: func(c *api.Config) {
		c.Limits.RequestTimeout = 300 * time.Millisecond
	}})
	rootCert := apiKeyCert(t, n.RootKey)
	before, _, _ := n.Store.ChainHead("LEDGER")
	body := []byte("\x1f\x8b\x08\x00 not a whole backup")

	c := dialRaw(t, n, &rootCert)
	c.send("PUT", "/v1/db", api.DefaultMaxDBUpload+1, nil)
	if resp, msg := c.answer(); resp.StatusCode != http.StatusRequestEntityTooLarge || !c.closedByServer() {
		t.Errorf("over the limit: %d %s (connection closed: checked), want 413", resp.StatusCode, msg)
	}

	c = dialRaw(t, n, &rootCert)
	c.send("PUT", "/v1/db", len(body)+10, body)
	mustOK(t, c.CloseWrite())
	if resp, msg := c.answer(); resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "shorter than its Content-Length") {
		t.Errorf("short body: %d %s, want 400 shorter than its Content-Length", resp.StatusCode, msg)
	}

	c = dialRaw(t, n, &rootCert)
	c.send("POST", "/v1/db", len(body)+10, body) // the rest never comes
	if resp, msg := c.answer(); resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("slow body: %d %s, want 408", resp.StatusCode, msg)
	}

	random := randomCert(t)
	c = dialRaw(t, n, &random)
	c.send("PUT", "/v1/db", len(body), body)
	if resp, msg := c.answer(); resp.StatusCode != http.StatusForbidden {
		t.Errorf("random certificate: %d %s, want 403", resp.StatusCode, msg)
	}
	c = dialRaw(t, n, nil)
	c.send("GET", "/v1/db", 0, nil)
	if resp, msg := c.answer(); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET without a certificate: %d %s, want 403", resp.StatusCode, msg)
	}
	if after, _, _ := n.Store.ChainHead("LEDGER"); after != before {
		t.Errorf("LEDGER moved from %d to %d", before, after)
	}
}
