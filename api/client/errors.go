package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/kmsledger/kmsledger/api/wire"
)

// ErrProtocol is wrapped by errors about responses that break the wire
// protocol: no Content-Length, a wrong number of frames, a wrong command
// code, or an undecodable or invalid message.
var ErrProtocol = errors.New("client: protocol violation")

// Error is an error response of the server: its HTTP status and message.
type Error struct {
	Status  int
	Message string
}

// Error returns "<message> (status N)".
func (e *Error) Error() string { return fmt.Sprintf("%s (status %d)", e.Message, e.Status) }

// Is reports whether target is an *Error with the same Status and Message,
// as the kms-go SDK compares its errors.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && t.Status == e.Status && t.Message == e.Message
}

// The well-known errors of the protocol: kms-go clients match on them, so
// servers return them with exactly this status and message (the server's
// side is api's errorTable).
var (
	ErrPermission       = &Error{Status: http.StatusForbidden, Message: "access denied: insufficient permissions"}
	ErrEnclaveExists    = &Error{Status: http.StatusConflict, Message: "enclave already exists"}
	ErrEnclaveNotFound  = &Error{Status: http.StatusNotFound, Message: "enclave does not exist"}
	ErrKeyExists        = &Error{Status: http.StatusConflict, Message: "key already exists"}
	ErrKeyNotFound      = &Error{Status: http.StatusNotFound, Message: "key does not exist"}
	ErrPolicyNotFound   = &Error{Status: http.StatusNotFound, Message: "policy does not exist"}
	ErrIdentityNotFound = &Error{Status: http.StatusNotFound, Message: "identity does not exist"}
	ErrDecrypt          = &Error{Status: http.StatusBadRequest, Message: "invalid ciphertext"}
)

// maxErrorBody is how much of an error response is read, as the SDK does.
const maxErrorBody = 5 << 10

// readError turns a non-200 response into an *Error. The body is decoded
// as a protobuf ErrResponse for Content-Type application/octet-stream, as
// JSON {"message":...} for application/json, and taken as text otherwise.
func readError(resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Status: resp.StatusCode}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch mediaType {
	case "application/octet-stream":
		var m wire.ErrResponse
		if m.UnmarshalProto(body) == nil {
			e.Message = m.Message
		}
	case "application/json":
		var m struct {
			Message string `json:"message"`
			Error   string `json:"error"` // KES-style servers
		}
		if json.Unmarshal(body, &m) == nil {
			e.Message = m.Message
			if e.Message == "" {
				e.Message = m.Error
			}
		}
	default:
		e.Message = strings.TrimSpace(string(body))
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}
