package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// Errors of the api package itself.
var (
	errPermission    = errors.New("api: access denied")
	errNotSupported  = errors.New("api: not supported")
	errMixedCommands = errors.New("api: request mixes read and write commands")
)

// statusError is an error with an explicit status and client message,
// for input problems found in this package (framing, lengths).
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return "api: " + e.msg }

func badRequest(format string, args ...any) error {
	return &statusError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// errorEntry maps one domain error to a status and message; msg "" means
// the error's own client message (clientMessage).
type errorEntry struct {
	err    error
	status int
	msg    string
}

// errorTable maps domain errors to the exact status and message pairs
// that kms-go clients match on (the same pairs as client.Err*). With
// kesErrorTable, an overlay of it for the KES API (kes_status.go), it is
// the only place where errors meet HTTP statuses.
var errorTable = []errorEntry{
	{errPermission, 403, "access denied: insufficient permissions"},
	{commands.ErrEnclaveExists, 409, "enclave already exists"},
	{projections.ErrEnclaveNotFound, 404, "enclave does not exist"},
	{commands.ErrKeyExists, 409, "key already exists"},
	{commands.ErrUnchanged, 409, "key already exists"},
	{commands.ErrSkipped, 409, "key already exists"},
	{commands.ErrCommandIDReused, 409, "command id already used for another command on this key"},
	{ledger.ErrLookupTooLong, 409, "command id cannot be checked: the key has more than 1,000 events in the last 24 hours"},
	{projections.ErrKeyNotFound, 404, "key does not exist"},
	{commands.ErrKeyTombstoned, 409, "key was destroyed: its name stays reserved until an admin releases it"},
	{projections.ErrKeyDisabled, 409, "key is disabled"},
	{projections.ErrKeyPendingDeletion, 409, "key is pending deletion"},
	{commands.ErrNotPending, 409, "key is not pending deletion"},
	{commands.ErrPolicyNotFound, 404, "policy does not exist"},
	{commands.ErrIdentityNotFound, 404, "identity does not exist"},
	{commands.ErrAppRoleNotFound, 404, ""},
	{commands.ErrTokenNotFound, 404, ""},
	{hsm.ErrDecrypt, 400, "invalid ciphertext"},
	{hsm.ErrInvalidKeyType, 400, "invalid key type: want AES256 or ChaCha20"},
	{hsm.ErrInvalidKeyMaterial, 400, "invalid key material: want 32 bytes"},
	{hsm.ErrInvalidLength, 400, "invalid length: want 1 to 1024 bytes"},
	{hsm.ErrTransitLength, 400, "invalid ciphertext length"},
	{hsm.ErrTransitContext, 400, "missing context for key derivation"},
	{hsm.ErrTransitHash, 400, "unsupported algorithm"},
	{commands.ErrInvalidName, 400, ""},
	{commands.ErrInvalidArgument, 400, ""},
	{wire.ErrUnknownCommand, 400, ""},
	{wire.ErrInvalidPattern, 400, ""},
	{errMixedCommands, 400, "request mixes read and write commands"},
	// Refusals of add-hsm and rm-hsm, in the error's own words.
	{commands.ErrHSMExists, 409, ""},
	{commands.ErrLastHSM, 409, ""},
	{commands.ErrHSMAmbiguous, 409, ""},
	{commands.ErrHSMNotFound, 404, ""},
	{errNotSupported, 501, "not supported"},
	{ledger.ErrUnavailable, 503, "cluster unavailable: the write could not be confirmed by a majority of the nodes; retry"},
}

// refused reports whether err is a refusal the tables give a status
// (a 4xx or 501), not a failure answered with 500.
func refused(err error) bool {
	status, _ := resolveError(err, errorTable)
	return status != http.StatusInternalServerError
}

// writeError answers with the status and message for err. Unknown errors
// become 500 "internal error"; only those are logged with their cause, so
// client mistakes do not flood the log.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) (status int) {
	status, msg := resolveError(err, errorTable)
	if status == http.StatusInternalServerError {
		log.Error("request failed", "method", r.Method, "route", r.Pattern, "path", logPath(r), "remote", r.RemoteAddr, "err", err)
	}
	writeMessage(w, status, msg)
	return status
}

// resolveError finds the status and client message of err: a statusError
// or an oversized body first, then the first matching entry of the tables
// in order; anything else is 500 "internal error".
func resolveError(err error, tables ...[]errorEntry) (status int, msg string) {
	var se *statusError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &se):
		return se.status, se.msg
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: limit is %d bytes", mbe.Limit)
	}
	for _, t := range tables {
		for _, e := range t {
			if errors.Is(err, e.err) {
				if e.msg == "" {
					if m, ok := clientMessage(err); ok {
						return e.status, m
					}
					return e.status, strings.ToLower(http.StatusText(e.status))
				}
				return e.status, e.msg
			}
		}
	}
	return http.StatusInternalServerError, "internal error"
}

// writeMessage writes {"message": msg} with status and an exact
// Content-Length: the error body both kms-go and KES clients read.
func writeMessage(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// clientMessager is an error with a text for clients: the domain
// packages' refusals (commands, wire, projections) implement it, with
// their detail and without their package prefix.
type clientMessager interface {
	ClientMessage() string
}

// clientMessage is the client text of the first error in err's tree that
// has one, e.g. `invalid name: "a.b"` for commands.ErrInvalidName with
// its detail. A wrapper that only appends detail to that error's text
// (fmt.Errorf("%w: detail", sentinel)) keeps its detail; any other
// wrapper's text is not sent.
func clientMessage(err error) (string, bool) {
	var cm clientMessager
	if !errors.As(err, &cm) {
		return "", false
	}
	msg := cm.ClientMessage()
	if e, ok := cm.(error); ok {
		if rest, ok := strings.CutPrefix(err.Error(), e.Error()); ok {
			msg += rest
		}
	}
	return msg, true
}

// inputDetail is the client text of a refused input for a 400 message
// that names it: the error's client message, or a generic phrase for an
// error without one, so that no internal text reaches the client.
func inputDetail(err error) string {
	if m, ok := clientMessage(err); ok {
		return m
	}
	return "invalid input"
}

// maxLogPath bounds the request path in a log line: the path is the
// client's, and a log line must not be an amplifier.
const maxLogPath = 256

// logPath is the request's path for a log line, cut to maxLogPath bytes
// (with its length when cut).
func logPath(r *http.Request) string {
	p := r.URL.Path
	if len(p) <= maxLogPath {
		return p
	}
	return p[:maxLogPath] + "…(" + strconv.Itoa(len(p)) + " bytes)"
}
