// The Vault key store, read over Vault's HTTP API.
//
// KES keeps each key as one secret whose data is {"<name>": "<value>"}
// (the value as in value.go), at these paths under the engine mount:
//
//	          list (LIST)                  read (GET)
//	KV v1     <engine>/<prefix>            <engine>/<prefix>/<name>
//	KV v2     <engine>/metadata/<prefix>   <engine>/data/<prefix>/<name>?version=1
//
// A KV v1 read answers {"data": {name: value}}, a KV v2 read
// {"data": {"data": {name: value}, "metadata": {…}}}, a list
// {"data": {"keys": [...]}} (names ending in "/" are folders and are
// skipped; a 404 is an empty list). With transit configured, the value is a
// Vault transit ciphertext, opened with POST <transit>/decrypt/<key>
// {"ciphertext"} → {"data": {"plaintext": base64(value)}}.
//
// Authentication: a token set by the caller (VaultConfig.Token) is used as
// is; otherwise AppRole (POST auth/<engine>/login {"role_id","secret_id"})
// or Kubernetes (POST auth/<engine>/login {"role","jwt"}) gives
// auth.client_token. A 403 after a login triggers one fresh login and
// retry (the token may have expired). Requests carry X-Vault-Token and,
// unless the namespace is "" or "/", X-Vault-Namespace.

package migrate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
)

const maxVaultResponse = 64 << 20 // A list of many keys; reads are far smaller.

var (
	// ErrVault means Vault answered a request with an unexpected status or body.
	ErrVault = errors.New("migrate: vault request failed")
	// ErrPermission means Vault answered 403: bad credentials or a policy
	// that does not allow the request.
	ErrPermission = errors.New("migrate: vault: permission denied")
)

// Vault is a KES Vault key store. It is safe for concurrent use.
type Vault struct {
	cfg    VaultConfig
	client *http.Client
	base   *url.URL

	mu    sync.Mutex
	token string
}

// OpenVault logs in to Vault and returns the key store. httpClient nil
// means NewVaultHTTPClient(cfg.TLS). Errors wrap ErrConfig (nothing to log
// in with, bad endpoint), ErrPermission or ErrVault.
func OpenVault(ctx context.Context, cfg VaultConfig, httpClient *http.Client) (*Vault, error) {
	base, err := url.Parse(strings.TrimSuffix(cfg.Endpoint, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("%w: vault endpoint %q is not an http(s) URL", ErrConfig, cfg.Endpoint)
	}
	if cfg.Version != "v1" && cfg.Version != "v2" {
		return nil, fmt.Errorf("%w: vault version %q, want v1 or v2", ErrConfig, cfg.Version)
	}
	if cfg.Token == "" && cfg.AppRole == nil && cfg.Kubernetes == nil {
		return nil, fmt.Errorf("%w: vault: no token, approle or kubernetes credentials", ErrConfig)
	}
	if httpClient == nil {
		if httpClient, err = NewVaultHTTPClient(cfg.TLS); err != nil {
			return nil, err
		}
	}
	v := &Vault{cfg: cfg, client: httpClient, base: base, token: cfg.Token}
	if v.token == "" {
		if v.token, err = v.login(ctx); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Kind returns KindVault.
func (v *Vault) Kind() string { return KindVault }

// Location returns the URL under which the keys live (no credentials).
func (v *Vault) Location() string {
	return v.base.String() + "/v1/" + path.Join(v.namespace(), v.keysPath("data"))
}

// List returns the names of all keys under the prefix, sorted.
func (v *Vault) List(ctx context.Context) ([]string, error) {
	var resp struct {
		Data struct {
			Keys []string `json:"keys"`
		} `json:"data"`
	}
	err := v.call(ctx, "LIST", v.keysPath("metadata"), nil, &resp)
	if errors.Is(err, ErrNotFound) {
		return nil, nil // Vault answers 404 for an empty folder.
	}
	if err != nil {
		return nil, fmt.Errorf("migrate: list vault keys: %w", err)
	}
	names := slices.DeleteFunc(resp.Data.Keys, func(s string) bool { return strings.HasSuffix(s, "/") || s == "" })
	slices.Sort(names)
	return names, nil
}

// Read returns the stored value of a key (opened with transit if configured).
func (v *Vault) Read(ctx context.Context, name string) ([]byte, error) {
	if name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("%w: %q", ErrName, name)
	}
	var resp struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	p := path.Join(v.keysPath("data"), name)
	if v.cfg.Version == "v2" {
		p += "?version=1" // KES writes version 1 only and reads it back.
	}
	if err := v.call(ctx, http.MethodGet, p, nil, &resp); err != nil {
		return nil, fmt.Errorf("migrate: read vault key %q: %w", name, err)
	}
	data := resp.Data
	if v.cfg.Version == "v2" {
		data = nil
		if raw, ok := resp.Data["data"]; ok {
			if err := json.Unmarshal(raw, &data); err != nil {
				return nil, fmt.Errorf("migrate: read vault key %q: %w: data.data: %v", name, ErrVault, err)
			}
		}
		if data == nil {
			return nil, fmt.Errorf("%w: %q: version 1 deleted or destroyed", ErrNotFound, name)
		}
	}
	var value string
	if err := json.Unmarshal(data[name], &value); err != nil {
		return nil, fmt.Errorf("%w %q: vault secret has no string field %q", ErrKeyValue, name, name)
	}
	if v.cfg.Transit != nil {
		return v.transitDecrypt(ctx, name, value)
	}
	return []byte(value), nil
}

func (v *Vault) transitDecrypt(ctx context.Context, name, ct string) ([]byte, error) {
	var resp struct {
		Data struct {
			Plaintext string `json:"plaintext"`
		} `json:"data"`
	}
	p := path.Join(v.cfg.Transit.Engine, "decrypt", v.cfg.Transit.Key)
	if err := v.call(ctx, http.MethodPost, p, map[string]string{"ciphertext": ct}, &resp); err != nil {
		return nil, fmt.Errorf("migrate: transit-decrypt vault key %q: %w", name, err)
	}
	b, err := base64.StdEncoding.DecodeString(resp.Data.Plaintext)
	if err != nil {
		return nil, fmt.Errorf("migrate: transit-decrypt vault key %q: %w: plaintext is not base64", name, ErrVault)
	}
	return b, nil
}

// keysPath returns <engine>/<prefix> (v1) or <engine>/<kind>/<prefix> (v2).
func (v *Vault) keysPath(v2kind string) string {
	if v.cfg.Version == "v2" {
		return path.Join(v.cfg.Engine, v2kind, v.cfg.Prefix)
	}
	return path.Join(v.cfg.Engine, v.cfg.Prefix)
}

func (v *Vault) namespace() string {
	return strings.Trim(v.cfg.Namespace, "/")
}

func (v *Vault) login(ctx context.Context) (string, error) {
	var (
		ns, p string
		body  map[string]string
	)
	switch {
	case v.cfg.AppRole != nil:
		a := v.cfg.AppRole
		ns, p, body = cmp(a.Namespace, v.cfg.Namespace), path.Join("auth", a.Engine, "login"), map[string]string{"role_id": a.ID, "secret_id": a.Secret}
	case v.cfg.Kubernetes != nil:
		k := v.cfg.Kubernetes
		jwt := k.JWT
		if b, err := os.ReadFile(jwt); err == nil { // A path to the token, or the token itself.
			jwt = strings.TrimSpace(string(b))
		}
		ns, p, body = cmp(k.Namespace, v.cfg.Namespace), path.Join("auth", k.Engine, "login"), map[string]string{"role": k.Role, "jwt": jwt}
	default:
		return "", fmt.Errorf("%w: vault token rejected and no login configured", ErrPermission)
	}
	var resp struct {
		Auth *struct {
			ClientToken string `json:"client_token"`
		} `json:"auth"`
	}
	if err := v.do(ctx, "", ns, http.MethodPost, p, body, &resp); err != nil {
		return "", fmt.Errorf("migrate: vault login (%s): %w", p, err)
	}
	if resp.Auth == nil || resp.Auth.ClientToken == "" {
		return "", fmt.Errorf("migrate: vault login (%s): %w: no auth.client_token", p, ErrVault)
	}
	return resp.Auth.ClientToken, nil
}

// call sends an authenticated request, logging in again once on a 403 if
// the token came from a login.
func (v *Vault) call(ctx context.Context, method, p string, body, out any) error {
	v.mu.Lock()
	token := v.token
	v.mu.Unlock()
	err := v.do(ctx, token, v.cfg.Namespace, method, p, body, out)
	if !errors.Is(err, ErrPermission) || v.cfg.Token != "" {
		return err
	}
	fresh, lerr := v.login(ctx)
	if lerr != nil {
		return errors.Join(err, lerr)
	}
	v.mu.Lock()
	v.token = fresh
	v.mu.Unlock()
	return v.do(ctx, fresh, v.cfg.Namespace, method, p, body, out)
}

// do sends one request to /v1/<p> and decodes a 2xx JSON answer into out.
func (v *Vault) do(ctx context.Context, token, ns, method, p string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	rel, query, _ := strings.Cut(p, "?")
	u := *v.base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/" + rel
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrVault, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	if ns = strings.Trim(ns, "/"); ns != "" {
		req.Header.Set("X-Vault-Namespace", ns)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrVault, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxVaultResponse))
	if err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrVault, method, rel, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Errors []string `json:"errors"`
		}
		_ = json.Unmarshal(data, &e) // Best effort: the status says enough.
		sentinel := ErrVault
		switch resp.StatusCode {
		case http.StatusForbidden:
			sentinel = ErrPermission
		case http.StatusNotFound:
			sentinel = ErrNotFound
		}
		return fmt.Errorf("%w: %s %s: %s %q", sentinel, method, rel, resp.Status, e.Errors)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w: %s %s: response: %v", ErrVault, method, rel, err)
	}
	return nil
}
