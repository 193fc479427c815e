package client

import (
	"context"
	"net/http"
	"time"
)

// StreamVerification is what a verification checked of one stream.
type StreamVerification struct {
	Stream        string
	From, Last    uint64
	SignedThrough uint64 // the last sequence a verified checkpoint covers
}

// LedgerVerification is a node's verification of its ledger.
type LedgerVerification struct {
	OK        bool      `json:"ok"`
	Error     string    `json:"error"`
	Node      string    `json:"node"`
	CheckedAt time.Time `json:"checked_at"`
	Rejected  []string  `json:"rejected_keys"`
	Report    *struct {
		Ledger, Audit StreamVerification
		Checkpoints   int
		SigningKeys   []string
		Witness       uint64
	} `json:"report"`
}

// VerifyLedger asks the node to recompute the hash chains of its ledger
// and check every signed checkpoint (root only).
func (c *Client) VerifyLedger(ctx context.Context) (*LedgerVerification, error) {
	var v LedgerVerification
	if err := c.adminJSON(ctx, http.MethodGet, "/v1/ledger/verify", "", nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}
