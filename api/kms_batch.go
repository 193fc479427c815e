package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// DefaultMaxResponse is the default budget of a kms read answer: the sum
// of the frames a request asks for.
const DefaultMaxResponse = 4 << 20

// maxResponse is the response budget of a kms read request.
func (s *Server) maxResponse() int {
	if s.cfg.MaxResponse > 0 {
		return s.cfg.MaxResponse
	}
	return DefaultMaxResponse
}

// responseTooLarge is the error of a read request whose answer would
// exceed the budget: 413, saying so.
func responseTooLarge(limit int) error {
	return &statusError{http.StatusRequestEntityTooLarge,
		fmt.Sprintf("response too large: the answer to this request exceeds %d bytes; send fewer frames or smaller list pages", limit)}
}

// runWrites runs the write frames of a request all or nothing: every
// frame is authorised again, with the guards on identities, inside the
// decision that runs under the enclave's lock, each against the state the
// earlier frames leave; nothing is stored unless every frame is decided
// (commands.Handler.ExecuteBatch).
func (s *Server) runWrites(ctx context.Context, req request, calls []call) error {
	cmds := make([]commands.Command, len(calls))
	for i, c := range calls {
		if c.write == nil {
			return s.runCluster(ctx, req, calls) // kms_cluster.go
		}
		cmds[i] = commands.Checked{Command: c.write, Check: writeCheck(req, c)}
	}
	_, err := s.h.ExecuteBatch(ctx, req.identity, cmds)
	return err
}

// writeCheck is the authorisation of a write frame, run by the decision.
func writeCheck(req request, c call) func(*projections.State) error {
	return func(st *projections.State) error {
		if err := authorize(st, req.identity, req.enclave, c.cmd, c.resource); err != nil {
			return err
		}
		switch w := c.write.(type) {
		case commands.CreateIdentity:
			return guardIdentity(st, req.identity, req.enclave, w.Identity, w.Privilege == ledger.PrivilegeAdmin)
		case commands.DeleteIdentity:
			return guardIdentity(st, req.identity, req.enclave, w.Identity, false)
		case commands.AssignPolicy:
			return guardIdentity(st, req.identity, req.enclave, w.Identity, false)
		}
		return nil
	}
}

// runReads runs the read frames of a request in order and returns the
// encoded answer. The answer is bounded: once the frames produced so far
// exceed the server's response budget, the request fails with 413 and no
// partial answer.
func (s *Server) runReads(ctx context.Context, w http.ResponseWriter, calls []call) ([]byte, error) {
	limit := s.maxResponse()
	var body []byte
	for i, c := range calls {
		m, err := c.run(ctx)
		if err != nil {
			return nil, err
		}
		auditReply(w, i, m)
		if m == nil {
			continue
		}
		frame := m.MarshalProto()
		if len(body)+wire.FrameHeaderSize+len(frame) > limit {
			return nil, responseTooLarge(limit)
		}
		body = wire.AppendFrame(body, c.cmd, frame)
	}
	return body, nil
}
