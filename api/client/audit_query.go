package client

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// The request audit is read with GET /v1/ledger/requests: the AUDIT
// records (one per API request) that match a RequestFilter, oldest first.
// Access is that of the time-travel API.

// Values of RequestFilter.Result besides an exact HTTP status ("404").
const (
	ResultOK     = "ok"     // a 2xx answer
	ResultDenied = "denied" // 403
	ResultError  = "error"  // any other answer that is not 2xx
)

// RequestFilter selects AUDIT records. Empty fields select everything.
type RequestFilter struct {
	Enclave  string
	Key      string // records with an item on this key
	Identity string // records of requests made by this identity
	// Command: records with an item of this command ("KEY:DECRYPT"), or
	// of a non-kms route ("GET /v1/admin/{enclave}/keys/{name}"); a
	// pattern ending in "*" matches a prefix ("KEY:*").
	Command string
	// Result: ResultOK, ResultDenied, ResultError or a status ("404").
	Result string
	// Since: records in AUDIT messages after sequence Since.Seq, or of
	// requests that arrived at or after Since.Time.
	Since Point
	// Until: records in AUDIT messages up to sequence Until.Seq, or of
	// requests that arrived at or before Until.Time.
	Until Point
	// After is the polling cursor: records in AUDIT messages after this
	// sequence (AuditRequests.Last of the previous answer). It combines
	// with a Since time.
	After uint64
	Limit int // at most about this many (0 = the server's default); see AuditRequests.More
	// Tail, if > 0, asks for the last Tail matching records instead of
	// the first ones.
	Tail int
}

func (f RequestFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"enclave": f.Enclave, "key": f.Key, "identity": f.Identity, "command": f.Command,
		"result": f.Result, "since": f.Since.String(), "until": f.Until.String()} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for k, v := range map[string]int{"limit": f.Limit, "tail": f.Tail} {
		if v > 0 {
			q.Set(k, strconv.Itoa(v))
		}
	}
	if f.After > 0 {
		q.Set("after", strconv.FormatUint(f.After, 10))
	}
	return q
}

// AuditRequests is the body of GET /v1/ledger/requests.
type AuditRequests struct {
	Records []AuditRequest `json:"records"`
	// Last is the AUDIT sequence up to which every message was searched:
	// ask again with After = Last for what follows.
	Last uint64 `json:"last"`
	// More is set when the limit cut the answer short. Answers end at an
	// AUDIT message boundary, so one holds more than the limit only when
	// a single message alone has more matching records.
	More bool `json:"more,omitempty"`
}

// AuditRequest is one audited API request. It never holds associated
// data, a plaintext, a ciphertext or a key.
type AuditRequest struct {
	Seq      uint64             `json:"seq"` // the AUDIT message that holds it
	Time     time.Time          `json:"time"`
	Node     string             `json:"node"`
	Identity string             `json:"identity,omitempty"`
	Enclave  string             `json:"enclave,omitempty"`
	Method   string             `json:"method"`
	Path     string             `json:"path"`
	Route    string             `json:"route,omitempty"`
	Items    []AuditRequestItem `json:"items,omitempty"`
	Status   int                `json:"status"`
	Error    string             `json:"error,omitempty"`
	Duration int64              `json:"duration_us"`
	Client   string             `json:"client"`
	// Truncated lists the fields the server cut to keep the record
	// bounded, with their original sizes; absent when nothing was cut.
	Truncated []AuditCut `json:"truncated,omitempty"`
	// Dropped is set on a marker that stands for a record the ledger
	// refused to store (its items are left out).
	Dropped *AuditDrop `json:"dropped,omitempty"`
}

// AuditCut says that a field of a record was cut: Field is its JSON name
// ("path", "error", …; "items" when items were left out, Len then being
// how many there were) and Len its original size in bytes.
type AuditCut struct {
	Field string `json:"field"`
	Len   int    `json:"len"`
}

// AuditDrop says why a record was replaced by a marker.
type AuditDrop struct {
	Bytes  int    `json:"bytes"`
	Reason string `json:"reason"`
}

// AuditRequestItem is one command of an audited request (one kms frame,
// or the route and key of another request).
type AuditRequestItem struct {
	Command  string `json:"command"`
	Key      string `json:"key,omitempty"`
	Version  uint32 `json:"version,omitempty"`
	ADSHA256 string `json:"ad_sha256,omitempty"`
	KeyLen   int    `json:"key_len,omitempty"` // original size of Key, if it was cut
}

// AuditRequests returns the AUDIT records that match f.
func (c *Client) AuditRequests(ctx context.Context, f RequestFilter) (*AuditRequests, error) {
	var l AuditRequests
	if err := c.ledgerGet(ctx, "requests", f.query(), &l); err != nil {
		return nil, err
	}
	return &l, nil
}
