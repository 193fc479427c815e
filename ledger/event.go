package ledger

import (
	"encoding/json"
	"time"
)

// Event is the envelope of every fact in the LEDGER stream. The envelope is
// JSON-encoded as the message body; the type also travels in the
// Kmsledger-Type header, and Nats-Msg-Id is ScopedMsgID(Aggregate,
// CommandID) (events appended before command ids were scoped carry
// CommandID itself there).
//
// Event envelopes are contracts: fields are only ever added.
type Event struct {
	Type      string          `json:"type"`       // stable type string, e.g. "key.created.v1"
	ID        string          `json:"id"`         // unique id of this event
	Time      time.Time       `json:"time"`       // when the command was decided (UTC)
	Actor     string          `json:"actor"`      // h1: identity that issued the command
	Enclave   string          `json:"enclave"`    // enclave name; "" for system events
	Aggregate string          `json:"aggregate"`  // subject of the aggregate, see subjects.go
	CommandID string          `json:"command_id"` // the client's idempotency key, scoped to Aggregate by ScopedMsgID
	Payload   json.RawMessage `json:"payload"`    // type-specific body, see *_events.go

	// Seq is the LEDGER stream sequence. It is set when an event is read
	// back and is not part of the encoded envelope.
	Seq uint64 `json:"-"`
}
