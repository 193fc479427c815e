package interop

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/minio/kms-go/kms"
)

// TestHealth covers Version, Live and Ready, with and without a client
// certificate.
func TestHealth(t *testing.T) {
	g := newGroup(t, "health")

	g.run("Version", func(t *testing.T) {
		resp, err := env.Root.Version(ctx(t), &kms.VersionRequest{})
		noErr(t, "Version", err)
		if len(resp) != 1 {
			t.Fatalf("got %d responses, want 1", len(resp))
		}
		v := resp[0]
		if v.Version == "" || v.APIVersion != "v1" || v.Host == "" {
			t.Fatalf("got Version %q APIVersion %q Host %q, want non-empty, v1, non-empty", v.Version, v.APIVersion, v.Host)
		}
	})
	g.run("Live", func(t *testing.T) {
		noErr(t, "Live", env.Root.Live(ctx(t), &kms.LivenessRequest{}))
	})
	g.run("Ready", func(t *testing.T) {
		noErr(t, "Ready", env.Root.Ready(ctx(t), &kms.ReadinessRequest{}))
	})
	g.run("Ready for writes", func(t *testing.T) {
		noErr(t, "Ready", env.Root.Ready(ctx(t), &kms.ReadinessRequest{Write: true}))
	})
	g.run("Version, Live and Ready as unknown identity", func(t *testing.T) {
		c := clientFor(t, newKey(t))
		_, err := c.Version(ctx(t), &kms.VersionRequest{})
		noErr(t, "Version", err)
		noErr(t, "Live", c.Live(ctx(t), &kms.LivenessRequest{}))
		noErr(t, "Ready", c.Ready(ctx(t), &kms.ReadinessRequest{}))
	})
	for _, path := range []string{"/version", "/v1/health/live", "/v1/health/ready"} {
		g.run("GET "+path+" without client certificate", func(t *testing.T) {
			hc := &http.Client{Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: env.RootCAs},
				DisableKeepAlives: true,
			}}
			defer hc.CloseIdleConnections()
			req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, strings.TrimSuffix(env.Endpoint, "/")+path, nil)
			noErr(t, "NewRequest", err)
			resp, err := hc.Do(req)
			noErr(t, "GET", err)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			if path == "/version" && resp.ContentLength < 0 {
				t.Fatal("/version response has no Content-Length")
			}
		})
	}
}
