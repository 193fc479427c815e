package client

import (
	"context"
	"fmt"
	"time"
)

// maxPages bounds the paging loops in case a server never ends a listing.
const maxPages = 1 << 20

// maxPage is the most records or events asked for in one page.
const maxPage = 10000

// minPoll is the shortest polling interval of the Follow functions.
const minPoll = 10 * time.Millisecond

// EachLedgerEvents calls fn with every page of the ledger events f
// selects, oldest first, at most limit events in all (0 = all), and
// returns fn's first error.
func (c *Client) EachLedgerEvents(ctx context.Context, f EventFilter, limit int, fn func([]LedgerEvent) error) error {
	n := 0
	for range maxPages {
		if limit > 0 {
			f.Limit = min(limit-n, maxPage)
		}
		l, err := c.LedgerEvents(ctx, f)
		if err != nil {
			return err
		}
		if err := fn(l.Events); err != nil {
			return err
		}
		n += len(l.Events)
		if !l.More || (limit > 0 && n >= limit) {
			return nil
		}
		f.Since = Point{Seq: l.Last}
	}
	return fmt.Errorf("events: more than %d pages", maxPages)
}

// FollowLedgerEvents polls every interval (at least 10ms) for the events
// f selects after sequence last and calls fn with them, until ctx ends
// (which is not an error) or a request or fn fails.
func (c *Client) FollowLedgerEvents(ctx context.Context, f EventFilter, last uint64, interval time.Duration, fn func([]LedgerEvent) error) error {
	f.Tail = 0
	tick := time.NewTicker(max(interval, minPoll))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		f.Since = Point{Seq: last}
		l, err := c.LedgerEvents(ctx, f)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(l.Events); err != nil {
			return err
		}
		last = max(last, l.Last)
	}
}

// EachAuditRequests calls fn with every page of the audited requests f
// selects, oldest first, at most limit records in all (0 = all; a page
// whose one AUDIT message held more is cut), and returns the cursor after
// them (for FollowAuditRequests) or fn's first error.
func (c *Client) EachAuditRequests(ctx context.Context, f RequestFilter, limit int, fn func([]AuditRequest) error) (uint64, error) {
	n := 0
	for range maxPages {
		if limit > 0 {
			f.Limit = min(limit-n, maxPage)
		}
		l, err := c.AuditRequests(ctx, f)
		if err != nil {
			return 0, err
		}
		if limit > 0 && len(l.Records) > limit-n {
			l.Records = l.Records[:limit-n]
		}
		if err := fn(l.Records); err != nil {
			return 0, err
		}
		n += len(l.Records)
		if !l.More || (limit > 0 && n >= limit) {
			return l.Last, nil
		}
		f.After = l.Last
	}
	return 0, fmt.Errorf("requests: more than %d pages", maxPages)
}

// FollowAuditRequests polls every interval (at least 10ms) for the
// requests f selects after the cursor last, page by page, and calls fn
// with them, until ctx ends (which is not an error) or a request or fn
// fails.
func (c *Client) FollowAuditRequests(ctx context.Context, f RequestFilter, last uint64, interval time.Duration, fn func([]AuditRequest) error) error {
	tick := time.NewTicker(max(interval, minPoll))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for more := true; more; {
			f.After = last
			l, err := c.AuditRequests(ctx, f)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return err
			}
			if err := fn(l.Records); err != nil {
				return err
			}
			more = l.More && l.Last > last
			last = max(last, l.Last)
		}
	}
}
