package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
)

// Defaults and limits of the client (the server's: README.md, "Limits").
const (
	// DefaultEndpoint is used when Config.Endpoints is empty.
	DefaultEndpoint = "127.0.0.1:7373"

	// FailureWindow is how long a host that failed at the transport level
	// is skipped.
	FailureWindow = 30 * time.Second

	// MaxResponseBody bounds the size of a successful response body.
	MaxResponseBody = 64 << 20
)

// ErrInvalidEndpoint is returned by New for an endpoint that is not
// [scheme://]host[:port].
var ErrInvalidEndpoint = errors.New("client: invalid endpoint")

// Config configures a Client.
type Config struct {
	// Endpoints are the servers, as host[:port] with an optional http:// or
	// https:// prefix; HTTPS is always used. Empty means DefaultEndpoint.
	Endpoints []string

	// APIKey is a "k1:" or "k2:" API key. The client presents a certificate
	// for it. Empty means no client certificate (enough for Version, Live
	// and Ready).
	APIKey string

	// RootCAs verifies the server certificates; nil means the system roots.
	RootCAs *x509.CertPool

	// InsecureSkipVerify disables verification of server certificates.
	// Use only for tests and first set-up.
	InsecureSkipVerify bool

	// Timeout bounds each call, retries included; 0 means no bound other
	// than the caller's context.
	Timeout time.Duration
}

// Client sends requests to one or more kms servers. It is safe for
// concurrent use.
type Client struct {
	hosts    []string
	identity string
	timeout  time.Duration
	http     *http.Client

	mu     sync.Mutex
	failed map[string]time.Time // host -> time of its last transport failure
}

// New returns a client for conf. It parses the API key and builds the
// client certificate once.
func New(conf Config) (*Client, error) {
	hosts, err := parseEndpoints(conf.Endpoints)
	if err != nil {
		return nil, err
	}
	c := &Client{hosts: hosts, timeout: conf.Timeout, failed: make(map[string]time.Time)}

	tlsConf := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		RootCAs:            conf.RootCAs,
		InsecureSkipVerify: conf.InsecureSkipVerify, //nolint:gosec // explicit opt-in
		ClientSessionCache: tls.NewLRUClientSessionCache(100),
	}
	if conf.APIKey != "" {
		key, err := wire.ParseAPIKey(conf.APIKey)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		cert, err := wire.ClientCertificate(key)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		c.identity = wire.IdentityFromCert(cert.Leaf)
		tlsConf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		}
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	c.http = &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 50,
		ForceAttemptHTTP2:   true,
	}}
	return c, nil
}

// parseEndpoints strips schemes and trailing slashes and checks that each
// endpoint is a bare host[:port].
func parseEndpoints(endpoints []string) ([]string, error) {
	if len(endpoints) == 0 {
		return []string{DefaultEndpoint}, nil
	}
	hosts := make([]string, 0, len(endpoints))
	for _, e := range endpoints {
		h := strings.TrimSpace(e)
		if rest, ok := strings.CutPrefix(h, "https://"); ok {
			h = rest
		} else if rest, ok := strings.CutPrefix(h, "http://"); ok {
			h = rest
		}
		h = strings.TrimRight(h, "/")
		u, err := url.Parse("https://" + h)
		if h == "" || err != nil || u.Host != h || u.User != nil {
			return nil, fmt.Errorf("%w: %q", ErrInvalidEndpoint, e)
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// Identity returns the identity of the client's API key, or "" without one.
func (c *Client) Identity() string { return c.identity }

// Hosts returns the hosts the client sends requests to.
func (c *Client) Hosts() []string { return append([]string(nil), c.hosts...) }

// Close closes idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// startHost returns the index of the host a request starts at: a random
// host, then the first one from there that has not failed within
// FailureWindow; the random one if all have.
func (c *Client) startHost(now time.Time) int {
	if len(c.hosts) == 1 {
		return 0
	}
	start := rand.IntN(len(c.hosts))
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.hosts {
		j := (start + i) % len(c.hosts)
		if !c.recentlyFailedLocked(c.hosts[j], now) {
			return j
		}
	}
	return start
}

func (c *Client) recentlyFailedLocked(host string, now time.Time) bool {
	t, ok := c.failed[host]
	return ok && now.Sub(t) < FailureWindow
}

func (c *Client) markFailed(host string, now time.Time) {
	c.mu.Lock()
	c.failed[host] = now
	c.mu.Unlock()
}

// response is a successful (200) response read into memory.
type response struct {
	header http.Header
	body   []byte
	length int64
}

// do sends method path with body to a host, retrying transport errors on
// the next hosts, and returns the 200 response, an *Error for any other
// status, or the last transport error.
func (c *Client) do(ctx context.Context, method, path, rawQuery string, body []byte, header http.Header) (*response, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	start := c.startHost(time.Now())
	var lastErr error
	for i, tries := 0, 0; i < len(c.hosts); i++ {
		host := c.hosts[(start+i)%len(c.hosts)]
		if tries > 0 {
			c.mu.Lock()
			skip := c.recentlyFailedLocked(host, time.Now())
			c.mu.Unlock()
			if skip {
				continue
			}
		}
		tries++
		resp, err := c.send(ctx, host, method, path, rawQuery, body, header)
		if err == nil {
			return resp, nil
		}
		var apiErr *Error
		if errors.As(err, &apiErr) || errors.Is(err, ErrProtocol) || ctx.Err() != nil {
			return nil, err
		}
		c.markFailed(host, time.Now())
		lastErr = err
	}
	return nil, lastErr
}

// send sends one request to host.
func (c *Client) send(ctx context.Context, host, method, path, rawQuery string, body []byte, header http.Header) (*response, error) {
	u := url.URL{Scheme: "https", Host: host, Path: path, RawQuery: rawQuery}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/*")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, readError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+1))
	if err != nil {
		return nil, fmt.Errorf("client: %s: read response: %w", host, err)
	}
	if len(b) > MaxResponseBody {
		return nil, fmt.Errorf("%w: response larger than %d bytes", ErrProtocol, MaxResponseBody)
	}
	return &response{header: resp.Header, body: b, length: resp.ContentLength}, nil
}

// Send posts frames to /v1/kms/<enclave> (/v1/kms when enclave is empty)
// and returns the response frames; nil when the server answered 200 with an
// empty body, as it may for write commands. The response must carry a
// Content-Length.
func (c *Client) Send(ctx context.Context, enclave string, frames []wire.Frame) ([]wire.Frame, error) {
	path := "/v1/kms"
	if enclave != "" {
		path += "/" + enclave
	}
	header := http.Header{"Content-Type": {"application/octet-stream"}}
	resp, err := c.do(ctx, http.MethodPost, path, "", wire.EncodeFrames(frames), header)
	if err != nil {
		return nil, err
	}
	if resp.length < 0 {
		return nil, fmt.Errorf("%w: response has no Content-Length", ErrProtocol)
	}
	if len(resp.body) == 0 {
		return nil, nil
	}
	out, err := wire.DecodeFrames(resp.body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return out, nil
}

// Version returns the server version of the first host that answers.
// The body is protobuf when the Content-Type is exactly
// application/octet-stream and JSON otherwise.
func (c *Client) Version(ctx context.Context) (*wire.VersionResponse, error) {
	resp, err := c.do(ctx, http.MethodGet, "/version", "", nil, nil)
	if err != nil {
		return nil, err
	}
	if resp.length < 0 {
		return nil, fmt.Errorf("%w: response has no Content-Length", ErrProtocol)
	}
	v := new(wire.VersionResponse)
	if mt, _, _ := mime.ParseMediaType(resp.header.Get("Content-Type")); mt == "application/octet-stream" {
		err = v.UnmarshalProto(resp.body)
	} else {
		err = v.UnmarshalJSON(resp.body)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: version: %w", ErrProtocol, err)
	}
	return v, nil
}

// Live reports whether a server answers GET /v1/health/live with 200.
func (c *Client) Live(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/v1/health/live", "", nil, nil)
	return err
}

// Ready reports whether a server answers GET /v1/health/ready with 200.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/v1/health/ready", "", nil, nil)
	return err
}

// ReadyFor is Ready with a condition of a cluster node: "write" (a
// write would be stored now) or "replicas" (its stream replicas are
// current with their leaders).
func (c *Client) ReadyFor(ctx context.Context, condition string) error {
	_, err := c.do(ctx, http.MethodGet, "/v1/health/ready", url.QueryEscape(condition), nil, nil)
	return err
}
