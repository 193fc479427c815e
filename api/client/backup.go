package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// DownloadBackup streams a backup of the first host that answers
// (GET /v1/db, root only) into w and returns its size. A backup is
// gzip; it is written as received, byte for byte. Config.Timeout does
// not apply: ctx bounds the download.
func (c *Client) DownloadBackup(ctx context.Context, w io.Writer) (int64, error) {
	var lastErr error
	for _, host := range c.hosts {
		resp, err := c.stream(ctx, host, http.MethodGet, nil, -1)
		if err != nil {
			var apiErr *Error
			if errors.As(err, &apiErr) {
				return 0, err
			}
			lastErr = err
			continue
		}
		n, err := io.Copy(w, resp.Body)
		resp.Body.Close()
		if err != nil {
			return n, fmt.Errorf("client: %s: backup: %w", host, err)
		}
		return n, nil
	}
	return 0, lastErr
}

// UploadBackup sends a backup of size bytes to the first host
// (PUT /v1/db, root only; kms-go's WriteDB). A kmsledger server verifies
// it and answers 409: a running node does not replace its state.
func (c *Client) UploadBackup(ctx context.Context, r io.Reader, size int64) error {
	if len(c.hosts) == 0 {
		return ErrInvalidEndpoint
	}
	resp, err := c.stream(ctx, c.hosts[0], http.MethodPut, r, size)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// stream sends one request to host and returns the 200 response with its
// body unread, or an *Error.
func (c *Client) stream(ctx context.Context, host, method string, body io.Reader, size int64) (*http.Response, error) {
	u := url.URL{Scheme: "https", Host: host, Path: "/v1/db"}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("client: %s /v1/db: %w", method, err)
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/gzip")
	}
	req.Header.Set("Accept", "application/*")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", host, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}
