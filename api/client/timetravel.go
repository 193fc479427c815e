package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
)

// The time-travel API is JSON over GET on the same mTLS listener
// (/v1/ledger/...). It answers questions about the past from the LEDGER:
// the state at a sequence or a time, who could run a command on a key,
// what changed between two points, and the events themselves. The server
// (package api) encodes exactly these types.

// ErrInvalidPoint is wrapped by ParsePoint errors.
var ErrInvalidPoint = errors.New("client: invalid point in the ledger: want a sequence number or an RFC 3339 time")

// Point is a point in the ledger's history: after the event with sequence
// Seq, or at Time. The zero Point means "not given".
type Point struct {
	Seq  uint64
	Time time.Time
}

// IsZero reports whether p is not given.
func (p Point) IsZero() bool { return p.Seq == 0 && p.Time.IsZero() }

// String is the sequence number, or the time in RFC 3339 with nanoseconds,
// or "" for the zero Point. ParsePoint reads it back.
func (p Point) String() string {
	switch {
	case p.Seq != 0:
		return strconv.FormatUint(p.Seq, 10)
	case !p.Time.IsZero():
		return p.Time.UTC().Format(time.RFC3339Nano)
	}
	return ""
}

// ParsePoint reads a sequence number (digits) or an RFC 3339 time; ""
// gives the zero Point.
func ParsePoint(s string) (Point, error) {
	if s == "" {
		return Point{}, nil
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		if n == 0 {
			return Point{}, fmt.Errorf("%w: sequence 0", ErrInvalidPoint)
		}
		return Point{Seq: n}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Point{}, fmt.Errorf("%w: %q", ErrInvalidPoint, s)
	}
	return Point{Time: t}, nil
}

// atQuery sets "seq" or "at" for p.
func (p Point) atQuery(q url.Values) {
	if p.Seq != 0 {
		q.Set("seq", p.String())
	} else if !p.Time.IsZero() {
		q.Set("at", p.String())
	}
}

// LedgerState is the body of GET /v1/ledger/state: the state after the
// event with sequence Seq.
type LedgerState struct {
	Seq      uint64         `json:"seq"`
	Enclaves []EnclaveState `json:"enclaves"`
}

// EnclaveState is one enclave in a LedgerState. Assignments are the
// Policy field of each identity.
type EnclaveState struct {
	Name       string           `json:"name"`
	CreatedAt  time.Time        `json:"created_at"`
	CreatedBy  string           `json:"created_by"`
	Keys       []wire.KeyInfo   `json:"keys"`
	Tombstones []TombstoneState `json:"tombstones,omitempty"`
	Identities []IdentityState  `json:"identities"`
	Policies   []PolicyState    `json:"policies"`
}

// TombstoneState is a destroyed key whose name was still reserved.
type TombstoneState struct {
	Name        string    `json:"name"`
	DestroyedAt time.Time `json:"destroyed_at"`
	DestroyedBy string    `json:"destroyed_by"`
	Reason      string    `json:"reason,omitempty"`
}

// IdentityState is one identity of an enclave.
type IdentityState struct {
	Identity       string            `json:"identity"`
	Privilege      string            `json:"privilege"` // "Admin" or "User"
	Policy         string            `json:"policy,omitempty"`
	ServiceAccount bool              `json:"service_account,omitempty"`
	Parent         string            `json:"parent,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	CreatedAt      time.Time         `json:"created_at"`
	CreatedBy      string            `json:"created_by"`
}

// PolicyState is one policy of an enclave.
type PolicyState struct {
	Name      string              `json:"name"`
	Allow     map[string][]string `json:"allow,omitempty"`
	Deny      map[string][]string `json:"deny,omitempty"`
	CreatedAt time.Time           `json:"created_at"`
	CreatedBy string              `json:"created_by"`
}

// Ways a Grant was given.
const (
	ViaRoot   = "root"   // the root (SysAdmin) identity
	ViaAdmin  = "admin"  // an Admin of the enclave (or the root's service account)
	ViaPolicy = "policy" // a User's policy
)

// WhoCanResult is the body of GET /v1/ledger/who-can.
type WhoCanResult struct {
	Seq     uint64  `json:"seq"`
	Enclave string  `json:"enclave"`
	Key     string  `json:"key"`
	Command string  `json:"command"`
	Grants  []Grant `json:"grants"`
}

// Grant is one identity allowed to run a command on a key, and why.
type Grant struct {
	Identity string            `json:"identity"`
	Via      string            `json:"via"`              // ViaRoot, ViaAdmin or ViaPolicy
	Parent   string            `json:"parent,omitempty"` // a service account's parent, whose rights it has
	Policy   string            `json:"policy,omitempty"` // ViaPolicy: the policy
	Rule     string            `json:"rule,omitempty"`   // ViaPolicy: the allow pattern that matched
	Reason   string            `json:"reason"`           // one line for people
	Tags     map[string]string `json:"tags,omitempty"`   // the identity's tags
}

// LedgerDiff is the body of GET /v1/ledger/diff.
type LedgerDiff struct {
	From    uint64   `json:"from"` // sequence of the first state
	To      uint64   `json:"to"`   // sequence of the second state
	Changes []Change `json:"changes"`
}

// Change is one difference between two states.
type Change struct {
	Op          string `json:"op"`   // "added", "removed" or "changed"
	Kind        string `json:"kind"` // "enclave", "key", "version", "tombstone", "identity", "assignment" or "policy"
	Enclave     string `json:"enclave"`
	Name        string `json:"name"`
	Version     uint32 `json:"version,omitempty"`
	Description string `json:"description"`
}

// LedgerEvents is the body of GET /v1/ledger/events.
type LedgerEvents struct {
	Events []LedgerEvent `json:"events"`
	// Last is the sequence up to which the ledger was searched: ask again
	// with Since = Point{Seq: Last} for what follows.
	Last uint64 `json:"last"`
	// More is set when the limit cut the answer short.
	More bool `json:"more,omitempty"`
}

// LedgerEvent is one LEDGER event.
type LedgerEvent struct {
	Seq       uint64          `json:"seq"`
	Type      string          `json:"type"`
	Time      time.Time       `json:"time"`
	Actor     string          `json:"actor"`
	Enclave   string          `json:"enclave"`
	Aggregate string          `json:"aggregate"`
	ID        string          `json:"id"`
	CommandID string          `json:"command_id"`
	Payload   json.RawMessage `json:"payload"`
}

// EventFilter selects LEDGER events. Empty fields select everything.
type EventFilter struct {
	Enclave  string
	Key      string // events of this key
	Identity string // events by or about this identity
	Type     string // an event type, or a prefix ending in "*" ("key.*")
	// Since: events after sequence Since.Seq, or at or after Since.Time.
	Since Point
	// Until: events up to sequence Until.Seq, or up to Until.Time.
	Until Point
	Limit int // at most this many (0 = the server's default)
	// Tail, if > 0, asks for the last Tail matching events instead of the
	// first ones.
	Tail int
}

func (f EventFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"enclave": f.Enclave, "key": f.Key, "identity": f.Identity, "type": f.Type,
		"since": f.Since.String(), "until": f.Until.String()} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Tail > 0 {
		q.Set("tail", strconv.Itoa(f.Tail))
	}
	return q
}

func (c *Client) ledgerGet(ctx context.Context, path string, q url.Values, out any) error {
	return c.adminJSON(ctx, http.MethodGet, "/v1/ledger/"+path, q.Encode(), nil, out)
}

// LedgerState returns the state at p, of one enclave or (enclave "",
// root only) of all.
func (c *Client) LedgerState(ctx context.Context, p Point, enclave string) (*LedgerState, error) {
	q := url.Values{}
	p.atQuery(q)
	if enclave != "" {
		q.Set("enclave", enclave)
	}
	var st LedgerState
	if err := c.ledgerGet(ctx, "state", q, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// WhoCan returns every identity that was allowed to run command (e.g.
// "KEY:DECRYPT") on key in enclave at p, and why.
func (c *Client) WhoCan(ctx context.Context, enclave, key, command string, p Point) (*WhoCanResult, error) {
	q := url.Values{"enclave": {enclave}, "key": {key}, "command": {command}}
	p.atQuery(q)
	var r WhoCanResult
	if err := c.ledgerGet(ctx, "who-can", q, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// LedgerDiff returns what changed from one point to another (the zero
// to: the head), in one enclave or (enclave "", root only) in all.
func (c *Client) LedgerDiff(ctx context.Context, from, to Point, enclave string) (*LedgerDiff, error) {
	q := url.Values{}
	for k, v := range map[string]string{"from": from.String(), "to": to.String(), "enclave": enclave} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var d LedgerDiff
	if err := c.ledgerGet(ctx, "diff", q, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// LedgerEvents returns the LEDGER events that match f.
func (c *Client) LedgerEvents(ctx context.Context, f EventFilter) (*LedgerEvents, error) {
	var l LedgerEvents
	if err := c.ledgerGet(ctx, "events", f.query(), &l); err != nil {
		return nil, err
	}
	return &l, nil
}
