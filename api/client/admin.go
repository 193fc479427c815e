package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/kmsledger/kmsledger/api/wire"
)

// adminJSON sends a JSON request to the admin API and decodes the JSON
// answer into out (if not nil).
func (c *Client) adminJSON(ctx context.Context, method, path, rawQuery string, in, out any) error {
	var body []byte
	header := http.Header{}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
		header.Set("Content-Type", "application/json")
	}
	resp, err := c.do(ctx, method, path, rawQuery, body, header)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrProtocol, path, err)
	}
	return nil
}

func keyPath(enclave, name string) string {
	return "/v1/admin/" + url.PathEscape(enclave) + "/keys/" + url.PathEscape(name)
}

// KeyInfo returns a key with every version and its state.
func (c *Client) KeyInfo(ctx context.Context, enclave, name string) (*wire.KeyInfo, error) {
	var k wire.KeyInfo
	if err := c.adminJSON(ctx, http.MethodGet, keyPath(enclave, name), "", nil, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// ListKeyInfo returns every key of the enclave whose name starts with
// prefix, with states.
func (c *Client) ListKeyInfo(ctx context.Context, enclave, prefix string) ([]wire.KeyInfo, error) {
	var l wire.KeyInfoList
	q := url.Values{"prefix": {prefix}}.Encode()
	if err := c.adminJSON(ctx, http.MethodGet, "/v1/admin/"+url.PathEscape(enclave)+"/keys", q, nil, &l); err != nil {
		return nil, err
	}
	return l.Keys, nil
}

func (c *Client) keyAction(ctx context.Context, enclave, name, action string, req wire.KeyActionRequest, out any) error {
	return c.adminJSON(ctx, http.MethodPost, keyPath(enclave, name)+"/"+action, "", req, out)
}

// DisableKey disables a key (version 0) or one version.
func (c *Client) DisableKey(ctx context.Context, enclave, name string, version uint32) error {
	return c.keyAction(ctx, enclave, name, "disable", wire.KeyActionRequest{Version: version}, nil)
}

// EnableKey enables a key (version 0) or one version again.
func (c *Client) EnableKey(ctx context.Context, enclave, name string, version uint32) error {
	return c.keyAction(ctx, enclave, name, "enable", wire.KeyActionRequest{Version: version}, nil)
}

// ScheduleKeyDeletion marks a key pending deletion for after (e.g. "7d").
func (c *Client) ScheduleKeyDeletion(ctx context.Context, enclave, name, after string) error {
	return c.keyAction(ctx, enclave, name, "schedule-deletion", wire.KeyActionRequest{After: after}, nil)
}

// RestoreKey cancels a scheduled deletion.
func (c *Client) RestoreKey(ctx context.Context, enclave, name string) error {
	return c.keyAction(ctx, enclave, name, "restore", wire.KeyActionRequest{}, nil)
}

// ReleaseKeyName frees the name of a destroyed key for reuse.
func (c *Client) ReleaseKeyName(ctx context.Context, enclave, name string) error {
	return c.keyAction(ctx, enclave, name, "release", wire.KeyActionRequest{}, nil)
}

// Rewrap re-encrypts ciphertext under the latest version of the key; the
// server never returns the plaintext.
func (c *Client) Rewrap(ctx context.Context, enclave, name string, ciphertext, ad []byte) (*wire.RewrapResponse, error) {
	var r wire.RewrapResponse
	if err := c.keyAction(ctx, enclave, name, "rewrap", wire.KeyActionRequest{Ciphertext: ciphertext, AssociatedData: ad}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ImportKeyWithSource imports key material with provenance (migrations).
// It reports whether the key was imported, unchanged, skipped or replaced.
func (c *Client) ImportKeyWithSource(ctx context.Context, enclave, name string, req *wire.KeyImportRequest) (*wire.KeyImportResponse, error) {
	var r wire.KeyImportResponse
	if err := c.adminJSON(ctx, http.MethodPost, keyPath(enclave, name)+"/import", "", req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ListHSMs lists the HSMs the REK is sealed under and those configured on
// the node, with their health (root only).
func (c *Client) ListHSMs(ctx context.Context) ([]wire.HSMInfo, error) {
	var l wire.HSMList
	if err := c.adminJSON(ctx, http.MethodGet, "/v1/admin/hsm", "", nil, &l); err != nil {
		return nil, err
	}
	return l.HSMs, nil
}

// AddHSM seals the REK under the HSM configured on the node as name.
func (c *Client) AddHSM(ctx context.Context, name string) error {
	return c.adminJSON(ctx, http.MethodPost, "/v1/admin/hsm/"+url.PathEscape(name), "", struct{}{}, nil)
}

// RemoveHSM stops using the REK sealed under the HSM name (or key id).
func (c *Client) RemoveHSM(ctx context.Context, name string) error {
	return c.adminJSON(ctx, http.MethodDelete, "/v1/admin/hsm/"+url.PathEscape(name), "", nil, nil)
}
