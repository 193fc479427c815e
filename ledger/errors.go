package ledger

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test them with errors.Is; messages are never
// compared.
var (
	// ErrConflict reports that an optimistic-concurrency expectation failed:
	// another event was appended to the expected subject first. The returned
	// error is a *ConflictError.
	ErrConflict = errors.New("ledger: conflict")

	// ErrSecretNotFound reports that SECRETS holds no message for a reference.
	ErrSecretNotFound = errors.New("ledger: secret not found")

	// ErrSecretExists reports that a reference already holds sealed material.
	ErrSecretExists = errors.New("ledger: secret exists")

	// ErrClosed reports a call on a Store after Close.
	ErrClosed = errors.New("ledger: store closed")

	// ErrInvalid reports an argument that cannot be turned into a safe
	// subject or header: an empty or malformed subject, event type or
	// command id, or a bad secret reference.
	ErrInvalid = errors.New("ledger: invalid argument")

	// ErrMalformed reports a LEDGER message whose body is not an Event
	// envelope. Only Append writes to LEDGER, so this means the stream was
	// written by something else.
	ErrMalformed = errors.New("ledger: malformed event")

	// ErrLocked reports that another Store (in this or another process)
	// already has the data directory open.
	ErrLocked = errors.New("ledger: data directory in use")
)

// ConflictError is the detail of an ErrConflict: the last sequence on
// Subject was not Expected.
type ConflictError struct {
	Subject  string // subject (or wildcard) the expectation was on
	Expected uint64 // sequence the caller expected; 0 = "no message yet"
}

// Error implements error.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("ledger: conflict: last sequence on %s is not %d", e.Subject, e.Expected)
}

// Is reports whether target is ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }
