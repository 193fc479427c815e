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

// eventTypes is every event type this version writes or reads, with its
// payload: the Go type named after the event (key.disabled.v1 carries a
// KeyDisabled). Each has a golden file testdata/events/<type>.json that
// the tests decode; the table in doc.go names the command, route and CLI
// command that write it. It is read-only.
var eventTypes = []struct {
	Type       string
	newPayload func() any
}{
	// system events (system_events.go, hsm_events.go, checkpoint.go)
	{TypeSystemInitialized, payload[SystemInitialized]},
	{TypeHSMAdded, payload[HSMAdded]},
	{TypeHSMRemoved, payload[HSMRemoved]},
	{TypeSigningKey, payload[SigningKey]},
	{TypeCheckpoint, payload[Checkpoint]},
	// enclave aggregate (system_events.go)
	{TypeEnclaveCreated, payload[EnclaveCreated]},
	{TypeEnclaveDeleted, payload[EnclaveDeleted]},
	// key aggregate (key_events.go)
	{TypeKeyCreated, payload[KeyCreated]},
	{TypeKeyImported, payload[KeyImported]},
	{TypeKeyVersionDeleted, payload[KeyVersionDeleted]},
	{TypeKeyDeleted, payload[KeyDeleted]},
	{TypeKeyDisabled, payload[KeyDisabled]},
	{TypeKeyEnabled, payload[KeyEnabled]},
	{TypeKeyDeletionScheduled, payload[KeyDeletionScheduled]},
	{TypeKeyRestored, payload[KeyRestored]},
	{TypeKeyNameReleased, payload[KeyNameReleased]},
	{TypeKeyTransitConfigured, payload[KeyTransitConfigured]},
	// identity aggregate (identity_events.go)
	{TypeIdentityCreated, payload[IdentityCreated]},
	{TypeIdentityDeleted, payload[IdentityDeleted]},
	{TypePolicyAssigned, payload[PolicyAssigned]},
	// policy aggregate (policy_events.go)
	{TypePolicyCreated, payload[PolicyCreated]},
	{TypePolicyDeleted, payload[PolicyDeleted]},
	// Transit authentication (auth_events.go)
	{TypeAppRoleSet, payload[AppRoleSet]},
	{TypeAppRoleSecretIDAdded, payload[AppRoleSecretIDAdded]},
	{TypeAppRoleDeleted, payload[AppRoleDeleted]},
	{TypeTokenIssued, payload[TokenIssued]},
	{TypeTokenRenewed, payload[TokenRenewed]},
	{TypeTokenRevoked, payload[TokenRevoked]},
}

// Types returns every event type this version writes or reads, in the
// order of the table above.
func Types() []string {
	out := make([]string, len(eventTypes))
	for i, t := range eventTypes {
		out[i] = t.Type
	}
	return out
}

// NewPayload returns a pointer to a new zero payload of the Go type named
// after event type typ (a *KeyDisabled for key.disabled.v1), for decoding
// an Event's Payload; ok is false for a type this version does not know.
func NewPayload(typ string) (p any, ok bool) {
	for _, t := range eventTypes {
		if t.Type == typ {
			return t.newPayload(), true
		}
	}
	return nil, false
}

func payload[T any]() any { return new(T) }
