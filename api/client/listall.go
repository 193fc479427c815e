package client

import (
	"context"
	"fmt"

	"github.com/kmsledger/kmsledger/api/wire"
)

// listAll pages through a listing: page returns the items starting at
// continueAt and the first name of the next page, "" at the end. A
// server that sends the same continuation twice, or more than maxPages
// pages, gets an error instead of an endless loop.
func listAll[T any](ctx context.Context, page func(ctx context.Context, continueAt string) ([]T, string, error)) ([]T, error) {
	var all []T
	continueAt := ""
	for range maxPages {
		items, next, err := page(ctx, continueAt)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == "" || len(items) == 0 {
			return all, nil
		}
		if next == continueAt {
			return nil, fmt.Errorf("listing does not advance past %q", next)
		}
		continueAt = next
	}
	return nil, fmt.Errorf("listing has more than %d pages", maxPages)
}

// AllEnclaves returns every enclave whose name starts with prefix,
// paging through ListEnclaves.
func (c *Client) AllEnclaves(ctx context.Context, prefix string) ([]wire.EnclaveStatusResponse, error) {
	return listAll(ctx, func(ctx context.Context, at string) ([]wire.EnclaveStatusResponse, string, error) {
		resp, err := c.ListEnclaves(ctx, prefix, at, 0)
		if err != nil {
			return nil, "", err
		}
		return resp.Enclaves, resp.ContinueAt, nil
	})
}

// AllIdentities returns every identity of the enclave that starts with
// prefix, paging through ListIdentities.
func (c *Client) AllIdentities(ctx context.Context, enclave, prefix string) ([]wire.IdentityResponse, error) {
	return listAll(ctx, func(ctx context.Context, at string) ([]wire.IdentityResponse, string, error) {
		resp, err := c.ListIdentities(ctx, enclave, prefix, at, 0)
		if err != nil {
			return nil, "", err
		}
		return resp.Identities, resp.ContinueAt, nil
	})
}

// AllPolicies returns every policy of the enclave whose name starts with
// prefix, paging through ListPolicies.
func (c *Client) AllPolicies(ctx context.Context, enclave, prefix string) ([]wire.PolicyStatusResponse, error) {
	return listAll(ctx, func(ctx context.Context, at string) ([]wire.PolicyStatusResponse, string, error) {
		resp, err := c.ListPolicies(ctx, enclave, prefix, at, 0)
		if err != nil {
			return nil, "", err
		}
		return resp.Policies, resp.ContinueAt, nil
	})
}
