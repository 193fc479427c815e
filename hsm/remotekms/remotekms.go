// Remote HSM: a key held by another kmsledger (or any server speaking the
// kms API) seals the Root Encryption Key with KEY:ENCRYPT / KEY:DECRYPT.
//
// Summary: Wrap sends the plaintext to the remote server's Encrypt with
// associated data 0x01 ‖ aad and prefixes the returned ciphertext with the
// format byte; Unwrap strips it and calls Decrypt with version 0, so the
// server takes the key version from its self-describing ciphertext and a
// rotated remote key still opens old blobs. The remote ciphertext is
// opaque here; its integrity is the remote key's AEAD.
//
//	+------+-----------------------------------------------+
//	| 0x01 | remote kms ciphertext (opaque, self-describing)|
//	+------+-----------------------------------------------+
//	remote associated data = 0x01 ‖ aad
//
// References: the kms API (package api/wire): commands 205 KEY:ENCRYPT and
// 206 KEY:DECRYPT, its errors, ciphertexts and retries.

package remotekms

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/hsm"
)

const (
	// DefaultTimeout bounds each call, retries over the endpoints
	// included, when Config.Timeout is 0.
	DefaultTimeout = 30 * time.Second

	format = 0x01 // First byte of every wrapped blob.
)

// Errors of Open, Wrap and Unwrap; each names the endpoints or the key.
var (
	// ErrConfig means a Config is incomplete or malformed.
	ErrConfig = errors.New("remotekms: invalid configuration")
	// ErrUnreachable means no endpoint answered (connection, TLS or
	// timeout errors on every one) or the server answered with a 5xx.
	ErrUnreachable = errors.New("remotekms: server unreachable")
	// ErrKeyNotFound means the remote enclave or key does not exist.
	ErrKeyNotFound = errors.New("remotekms: key not found")
	// ErrPermission means the API key may not encrypt or decrypt with the
	// key (an unknown identity, or a policy that does not allow it).
	ErrPermission = errors.New("remotekms: permission denied")
	// ErrClosed is returned by Wrap and Unwrap after Close.
	ErrClosed = errors.New("remotekms: HSM is closed")
)

// Config says which remote key to use.
type Config struct {
	// Endpoints are the servers, host[:port] with an optional https://.
	// Each call starts at a random one and moves on to the next after a
	// transport error.
	Endpoints []string
	// Enclave and Key name the remote key.
	Enclave, Key string
	// APIKey authenticates to the servers ("k1:…"); it needs KEY:ENCRYPT
	// and KEY:DECRYPT on Key. String and LogValue redact it.
	APIKey string
	// RootCAs verifies the servers' certificates; nil means the system
	// roots.
	RootCAs *x509.CertPool
	// Timeout bounds each call, retries included; 0 means DefaultTimeout.
	Timeout time.Duration
}

// String describes the configuration with the API key redacted.
func (c Config) String() string {
	key := "unset"
	if c.APIKey != "" {
		key = "redacted"
	}
	return fmt.Sprintf("remotekms.Config{Endpoints: %q, Enclave: %q, Key: %q, APIKey: %s, Timeout: %v}",
		c.Endpoints, c.Enclave, c.Key, key, c.Timeout)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer with the API key redacted.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// HSM is a key on a remote kms server. It implements hsm.Wrapper and is
// safe for concurrent use.
type HSM struct {
	c              *client.Client
	enclave, key   string
	keyID, servers string

	mu     sync.RWMutex // read-held by calls, write-held by Close
	closed bool
}

var _ hsm.Wrapper = (*HSM)(nil)

// Open connects to the servers and checks the key with an Encrypt and
// Decrypt round trip. Errors wrap ErrConfig, ErrUnreachable,
// ErrKeyNotFound or ErrPermission.
func Open(ctx context.Context, cfg Config) (*HSM, error) {
	var missing []string
	if len(cfg.Endpoints) == 0 {
		missing = append(missing, "endpoints")
	}
	if cfg.Enclave == "" {
		missing = append(missing, "enclave")
	}
	if cfg.Key == "" {
		missing = append(missing, "key name")
	}
	if cfg.APIKey == "" {
		missing = append(missing, "API key")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: missing %s", ErrConfig, strings.Join(missing, ", "))
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	c, err := client.New(client.Config{Endpoints: cfg.Endpoints, APIKey: cfg.APIKey, RootCAs: cfg.RootCAs, Timeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err) // Never echoes the API key.
	}
	h := &HSM{c: c, enclave: cfg.Enclave, key: cfg.Key, keyID: "kmsledger:" + cfg.Enclave + "/" + cfg.Key,
		servers: strings.Join(c.Hosts(), ", ")}
	if err := h.selfTest(ctx); err != nil {
		c.Close()
		return nil, err // It names the key, endpoints and cause.
	}
	return h, nil
}

// selfTest wraps and unwraps 32 random bytes.
func (h *HSM) selfTest(ctx context.Context) error {
	pt, aad := make([]byte, 32), []byte("kmsledger/remotekms/self-test")
	rand.Read(pt)
	ct, err := h.Wrap(ctx, pt, aad)
	if err != nil {
		return err
	}
	got, err := h.Unwrap(ctx, ct, aad)
	if err != nil {
		return err
	}
	if string(got) != string(pt) {
		return fmt.Errorf("remotekms %s: self-test: decrypt on %s returned other bytes than were encrypted", h.keyID, h.servers)
	}
	return nil
}

// KeyID returns "kmsledger:<enclave>/<key>".
func (h *HSM) KeyID() string { return h.keyID }

// String returns the key ID.
func (h *HSM) String() string { return h.keyID }

// Wrap encrypts plaintext bound to aad with the remote key:
// 0x01 ‖ remote ciphertext.
func (h *HSM) Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return nil, fmt.Errorf("%s: wrap: %w", h.keyID, ErrClosed)
	}
	resp, err := h.c.Encrypt(ctx, h.enclave, h.key, 0, plaintext, ad(aad))
	if err != nil {
		return nil, h.mapError("encrypt", err)
	}
	return append([]byte{format}, resp.Ciphertext...), nil
}

// Unwrap reverses Wrap. It returns an error wrapping hsm.ErrUnseal if the
// server rejects the ciphertext ("invalid ciphertext": another key, a
// modified blob, other aad), and ErrUnreachable, ErrKeyNotFound,
// ErrPermission or ErrClosed if the server cannot be asked.
func (h *HSM) Unwrap(ctx context.Context, ciphertext, aad []byte) ([]byte, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return nil, fmt.Errorf("%s: unwrap: %w", h.keyID, ErrClosed)
	}
	if len(ciphertext) < 2 || ciphertext[0] != format {
		return nil, fmt.Errorf("remotekms %s: %w", h.keyID, hsm.ErrUnseal)
	}
	resp, err := h.c.Decrypt(ctx, h.enclave, h.key, 0, ciphertext[1:], ad(aad))
	if err != nil {
		return nil, h.mapError("decrypt", err)
	}
	if resp.Plaintext == nil {
		return []byte{}, nil
	}
	return resp.Plaintext, nil
}

// Close waits for running calls and closes idle connections. Later calls
// return nil; Wrap and Unwrap then fail with ErrClosed.
func (h *HSM) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		h.c.Close()
	}
	return nil
}

func ad(aad []byte) []byte { return append([]byte{format}, aad...) }

// mapError turns a client error into one of the package's errors.
func (h *HSM) mapError(op string, err error) error {
	var apiErr *client.Error
	switch {
	case errors.Is(err, client.ErrDecrypt):
		return fmt.Errorf("remotekms %s: %w", h.keyID, hsm.ErrUnseal)
	case errors.Is(err, client.ErrKeyNotFound), errors.Is(err, client.ErrEnclaveNotFound):
		return fmt.Errorf("%w: %s: %s on %s: %w", ErrKeyNotFound, h.keyID, op, h.servers, err)
	case errors.Is(err, client.ErrPermission):
		return fmt.Errorf("%w: %s: %s on %s: the API key may not use the key: %w", ErrPermission, h.keyID, op, h.servers, err)
	case errors.As(err, &apiErr) && apiErr.Status >= http.StatusInternalServerError:
		return fmt.Errorf("%w: %s: %s on %s: %w", ErrUnreachable, h.keyID, op, h.servers, err)
	case errors.As(err, &apiErr), errors.Is(err, client.ErrProtocol), errors.Is(err, context.Canceled):
		// A 4xx other than the above, a broken response, or the caller
		// gave up: the server was reached, or never had to be.
		return fmt.Errorf("%s: %s on %s: %w", h.keyID, op, h.servers, err)
	}
	// Transport errors on every endpoint, or a timeout (which stays in the
	// chain as context.DeadlineExceeded).
	return fmt.Errorf("%w: %s: %s on %s: %w", ErrUnreachable, h.keyID, op, h.servers, err)
}
