package client

import (
	"context"
	"net/http"
	"strconv"

	"github.com/kmsledger/kmsledger/api/wire"
)

// ListKeyVersions returns one page of the live versions of a key, oldest
// first (KEY:LISTVERSIONS), starting at version from (0 = the oldest);
// limit 0 lets the server choose. The response's ContinueAt is the next
// version in decimal, or "" at the end.
func (c *Client) ListKeyVersions(ctx context.Context, enclave, name string, from, limit uint32) (*wire.ListKeysResponse, error) {
	req := &wire.ListRequest{Prefix: name, Limit: limit}
	if from > 0 {
		req.ContinueAt = strconv.FormatUint(uint64(from), 10)
	}
	resp, err := query[wire.ListKeysResponse](ctx, c, enclave, wire.CmdKeyListVersions, req)
	if err != nil {
		return nil, err
	}
	for i := range resp.Keys {
		if err := validateKey(&resp.Keys[i]); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// ClusterAddHSM seals the root encryption key under the HSM name of the node's
// configuration (CLUSTER:ADDHSM); overwrite accepts an HSM that already
// holds a sealing.
func (c *Client) ClusterAddHSM(ctx context.Context, name string, overwrite bool) error {
	return c.write(ctx, "", wire.CmdClusterAddHSM, &wire.AddHSMRequest{Name: name, Overwrite: overwrite})
}

// ClusterRemoveHSM removes the sealing of the root encryption key under the HSM
// name (CLUSTER:REMOVEHSM); the last sealing is not removed.
func (c *Client) ClusterRemoveHSM(ctx context.Context, name string) error {
	return c.write(ctx, "", wire.CmdClusterRemoveHSM, &wire.RemoveHSMRequest{Name: name})
}

// Restart asks a node to restart (POST /v1/debug/restart): with self only
// that node, otherwise its cluster's peers and then itself.
func (c *Client) Restart(ctx context.Context, self bool) error {
	q := ""
	if self {
		q = "self"
	}
	_, err := c.do(ctx, http.MethodPost, "/v1/debug/restart", q, nil, http.Header{"Accept": {"*/*"}})
	return err
}

// Metrics returns the server's metrics in the Prometheus text format
// (GET /v1/health/metrics).
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/health/metrics", "", nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.body, nil
}
