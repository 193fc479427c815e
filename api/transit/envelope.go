package transit

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
)

// Response is the envelope of every 2xx body. RequestID, LeaseID,
// LeaseDuration and Renewable are always sent (vaultrs requires them).
type Response struct {
	RequestID     string   `json:"request_id"`
	LeaseID       string   `json:"lease_id"`
	Renewable     bool     `json:"renewable"`
	LeaseDuration int64    `json:"lease_duration"`
	Data          any      `json:"data"`
	WrapInfo      any      `json:"wrap_info"`
	Warnings      []string `json:"warnings"`
	Auth          *Auth    `json:"auth"`
	MountType     string   `json:"mount_type,omitempty"`
}

// Auth is the "auth" object of a login or renewal.
type Auth struct {
	ClientToken   string            `json:"client_token"`
	Accessor      string            `json:"accessor"`
	Policies      []string          `json:"policies"`
	TokenPolicies []string          `json:"token_policies"`
	Metadata      map[string]string `json:"metadata"`
	LeaseDuration int64             `json:"lease_duration"`
	Renewable     bool              `json:"renewable"`
	EntityID      string            `json:"entity_id"`
	TokenType     string            `json:"token_type"`
	Orphan        bool              `json:"orphan"`
	NumUses       int               `json:"num_uses"`
}

// NewResponse returns the envelope of data with a fresh request id.
func NewResponse(data any) *Response {
	return &Response{RequestID: RequestID(), Data: data}
}

// RequestID returns a random UUID (version 4) in text form.
func RequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ErrorBody is the body of every error answer: {"errors": [...]}; a
// missing object has an empty, non-null list.
func ErrorBody(msgs ...string) []byte {
	if msgs == nil {
		msgs = []string{}
	}
	b, _ := json.Marshal(struct {
		Errors []string `json:"errors"`
	}{msgs})
	return b
}
