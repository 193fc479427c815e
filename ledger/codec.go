package ledger

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Message headers written on every LEDGER message, besides Nats-Msg-Id.
const (
	// TypeHeader carries Event.Type so that consumers can filter or route
	// without decoding the body (on a single node the link frame carries
	// it: event_linkframe.go).
	TypeHeader = "Kmsledger-Type"

	// maxIDLen bounds CommandID and Type. Both travel in headers.
	maxIDLen = 256
)

// dedupeProbeID is sent as Nats-Expected-Last-Msg-Id when Append probes
// whether a conflicting command was a duplicate. It contains a space, which
// validToken refuses in command ids, so no real message id ever equals it.
const dedupeProbeID = "kmsledger dedupe probe"

// encodeEvent validates ev and returns its wire body: the JSON envelope.
func encodeEvent(ev Event) ([]byte, error) {
	if !validSubject(ev.Aggregate, ledgerPrefix, false) {
		return nil, fmt.Errorf("ledger: aggregate subject %q: %w", ev.Aggregate, ErrInvalid)
	}
	if !validToken(ev.Type) {
		return nil, fmt.Errorf("ledger: event type %q: %w", ev.Type, ErrInvalid)
	}
	if !validToken(ev.CommandID) {
		return nil, fmt.Errorf("ledger: command id %q: %w", ev.CommandID, ErrInvalid)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("ledger: encode %s: %w", ev.Type, err)
	}
	return body, nil
}

// decodeEvent decodes a LEDGER message body stored on subject (JSON, or
// a frame of it: event_compress.go; in a link frame or not:
// event_linkframe.go) and stamps it with its stream sequence; a body as
// json.Marshal writes it in one pass (fastEvent).
func decodeEvent(stored []byte, subject string, seq uint64) (Event, error) {
	body, err := unlinkedBody(stored)
	if err == nil {
		body, err = eventJSON(body, subject)
	}
	if err != nil {
		return Event{}, fmt.Errorf("%w at seq %d: %w", ErrMalformed, seq, err)
	}
	if ev, ok := fastEvent(body); ok {
		ev.Seq = seq
		return ev, nil
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return Event{}, fmt.Errorf("%w at seq %d: %w", ErrMalformed, seq, err)
	}
	ev.Seq = seq
	return ev, nil
}

// validToken reports whether s can travel as a header value and a message
// id: 1 to 256 printable ASCII characters, no spaces.
func validToken(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f })
}
