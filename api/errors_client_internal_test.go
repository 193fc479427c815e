package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/projections"
)

// TestEmptyRowsHaveClientMessages: every errorTable row that answers
// with the error's own text (msg "") names an error that has a client
// message, which is its log text without the package prefix.
func TestEmptyRowsHaveClientMessages(t *testing.T) {
	for _, e := range errorTable {
		if e.msg != "" {
			continue
		}
		m, ok := clientMessage(e.err)
		if !ok || m == "" {
			t.Errorf("%v: no client message for a row with msg \"\"", e.err)
			continue
		}
		pkg, rest, found := strings.Cut(e.err.Error(), ": ")
		if !found || rest != m || strings.Contains(pkg, " ") {
			t.Errorf("%v: client message %q, want the text after the package prefix", e.err, m)
		}
	}
}

// TestClientMessageSendsNoForeignText: a wrapper that puts its own text
// before a refusal does not reach the client, an error without a client
// message yields a generic 400 detail, and the time-travel refusals have
// client messages without the "projections: " prefix.
func TestClientMessageSendsNoForeignText(t *testing.T) {
	wrapped := fmt.Errorf("ledger: secret sealed-ref-123: %w", commands.ErrInvalidName)
	status, msg := resolveError(wrapped, errorTable)
	if status != http.StatusBadRequest || msg != "invalid name" {
		t.Errorf("resolveError(%v) = %d %q, want 400 %q", wrapped, status, msg, "invalid name")
	}
	if got := inputDetail(errors.New("ledger: internal state 42")); got != "invalid input" {
		t.Errorf("inputDetail(an error without client text) = %q, want %q", got, "invalid input")
	}
	if _, ok := clientMessage(errors.New("wire: not a refusal")); ok {
		t.Error("clientMessage found a client text in a plain error")
	}
	for _, err := range []error{projections.ErrBeyondHead, projections.ErrPointInTime} {
		m, ok := clientMessage(err)
		if !ok || strings.HasPrefix(m, "projections: ") || !strings.HasSuffix(err.Error(), m) {
			t.Errorf("clientMessage(%v) = %q, %v: want its text without the prefix", err, m, ok)
		}
	}
}

// TestEmptyRowWithoutClientMessage: a row with msg "" whose error has no
// client message answers its status with the status text, not the
// error's internal text.
func TestEmptyRowWithoutClientMessage(t *testing.T) {
	internal := errors.New("ledger: stored at /data/secret")
	table := []errorEntry{{internal, http.StatusConflict, ""}}
	status, msg := resolveError(fmt.Errorf("x: %w", internal), table)
	if status != http.StatusConflict || msg != "conflict" {
		t.Errorf("resolveError = %d %q, want 409 %q", status, msg, "conflict")
	}
}
