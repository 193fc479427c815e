package commands

import (
	"errors"
	"fmt"
)

// clientError is an error whose text a client may read. Error carries
// the package prefix for logs; ClientMessage is the same text without it,
// which the api package sends to the client (found with errors.As).
type clientError struct {
	msg     string
	wrapped []error
}

func (e *clientError) Error() string         { return "commands: " + e.msg }
func (e *clientError) ClientMessage() string { return e.msg }
func (e *clientError) Unwrap() []error       { return e.wrapped }

// newClientError returns a sentinel whose client text is msg.
func newClientError(msg string) error { return &clientError{msg: msg} }

// refuse returns an error wrapping the sentinel base (a clientError)
// whose text, for logs and clients alike, is base's followed by ": " and
// the detail.
func refuse(base error, format string, args ...any) error {
	return &clientError{msg: base.(*clientError).msg + ": " + fmt.Sprintf(format, args...), wrapped: []error{base}}
}

// refuseCause is refuse for a refusal caused by another package's error:
// the text ends with the cause's client text and the error wraps both.
func refuseCause(base error, detail string, cause error) error {
	text := cause.Error()
	var cm interface{ ClientMessage() string }
	if errors.As(cause, &cm) {
		text = cm.ClientMessage()
	}
	return &clientError{msg: base.(*clientError).msg + ": " + detail + ": " + text, wrapped: []error{base, cause}}
}
