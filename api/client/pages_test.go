package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// pagedLedger serves n events and n audit records, two per page, after
// the "since" or "after" cursor, and records the cursors and limits asked
// for.
type pagedLedger struct {
	*httptest.Server
	n  uint64
	mu sync.Mutex
	qs []string
}

func newPagedLedger(t *testing.T, n uint64) *pagedLedger {
	t.Helper()
	p := &pagedLedger{n: n}
	p.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p.mu.Lock()
		p.qs = append(p.qs, r.URL.Path+"?"+q.Encode())
		p.mu.Unlock()
		cursor := q.Get("since")
		if r.URL.Path == "/v1/ledger/requests" {
			cursor = q.Get("after")
		}
		from, _ := strconv.ParseUint(cursor, 10, 64)
		last := min(from+2, p.n)
		if l, err := strconv.ParseUint(q.Get("limit"), 10, 64); err == nil && l > 0 && l < 2 {
			last = min(from+l, p.n)
		}
		var events []LedgerEvent
		var records []AuditRequest
		for s := from + 1; s <= last; s++ {
			events = append(events, LedgerEvent{Seq: s})
			records = append(records, AuditRequest{Seq: s})
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/ledger/requests" {
			_ = json.NewEncoder(w).Encode(AuditRequests{Records: records, Last: last, More: last < p.n})
			return
		}
		_ = json.NewEncoder(w).Encode(LedgerEvents{Events: events, Last: last, More: last < p.n})
	}))
	p.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	p.StartTLS()
	t.Cleanup(p.Close)
	return p
}

// TestEachLedgerEventsAndRequests: every page is fetched after the
// previous cursor, in order, up to the limit; fn's error stops the
// paging.
func TestEachLedgerEventsAndRequests(t *testing.T) {
	p := newPagedLedger(t, 5)
	c := newClient(t, testAPIKey, p.Server)
	ctx := t.Context()
	for _, limit := range []int{0, 3, 5, 9} {
		var seqs []uint64
		if err := c.EachLedgerEvents(ctx, EventFilter{}, limit, func(evs []LedgerEvent) error {
			for _, e := range evs {
				seqs = append(seqs, e.Seq)
			}
			return nil
		}); err != nil {
			t.Fatalf("EachLedgerEvents(limit %d) err = %v", limit, err)
		}
		want := min(uint64(limit), 5)
		if limit == 0 {
			want = 5
		}
		if uint64(len(seqs)) != want || (len(seqs) > 0 && seqs[len(seqs)-1] != want) {
			t.Fatalf("EachLedgerEvents(limit %d) = %v, want 1..%d", limit, seqs, want)
		}
		var recs []uint64
		last, err := c.EachAuditRequests(ctx, RequestFilter{}, limit, func(rs []AuditRequest) error {
			for _, r := range rs {
				recs = append(recs, r.Seq)
			}
			return nil
		})
		if err != nil || uint64(len(recs)) != want || last != want {
			t.Fatalf("EachAuditRequests(limit %d) = %v, last %d, %v; want 1..%d", limit, recs, last, err, want)
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := c.EachLedgerEvents(ctx, EventFilter{}, 0, func([]LedgerEvent) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("EachLedgerEvents with a failing fn = %v after %d calls, want stop after 1", err, calls)
	}
}

// TestFollowStopsWithContext: following prints what comes after the
// cursor and ends without error when ctx ends.
func TestFollowStopsWithContext(t *testing.T) {
	p := newPagedLedger(t, 4)
	c := newClient(t, testAPIKey, p.Server)
	ctx, cancel := context.WithCancel(t.Context())
	var got []uint64
	err := c.FollowAuditRequests(ctx, RequestFilter{}, 1, time.Millisecond, func(rs []AuditRequest) error {
		for _, r := range rs {
			got = append(got, r.Seq)
		}
		if len(got) >= 3 {
			cancel()
		}
		return nil
	})
	if err != nil || len(got) != 3 || got[0] != 2 || got[2] != 4 {
		t.Fatalf("FollowAuditRequests = %v, %v; want [2 3 4], nil", got, err)
	}
	ctx, cancel = context.WithCancel(t.Context())
	got = nil
	err = c.FollowLedgerEvents(ctx, EventFilter{Tail: 3}, 2, time.Millisecond, func(evs []LedgerEvent) error {
		for _, e := range evs {
			got = append(got, e.Seq)
		}
		if len(got) >= 2 {
			cancel()
		}
		return nil
	})
	if err != nil || len(got) != 2 || got[0] != 3 {
		t.Fatalf("FollowLedgerEvents = %v, %v; want [3 4], nil", got, err)
	}
}
