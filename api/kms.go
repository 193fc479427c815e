package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/projections"
)

// message is a protobuf message of the kms API.
type message interface {
	MarshalProto() []byte
	UnmarshalProto([]byte) error
}

// DefaultEnclave is the enclave of key, policy and identity commands sent
// to /v1/kms without an enclave (an empty MINIO_KMS_ENCLAVE). It exists
// only if someone creates it.
const DefaultEnclave = "default"

// request is one POST /v1/kms[/{enclave}] call.
type request struct {
	identity string // h1: identity of the client certificate
	enclave  string // from the path; "" for /v1/kms
}

// call is one decoded, authorisable frame of a request.
type call struct {
	cmd      wire.Command
	resource string                                           // what authorize matches patterns against
	run      func(ctx context.Context) (message, error)       // reads only
	write    commands.Command                                 // writes only; nil for cluster writes
	cluster  func(ctx context.Context, identity string) error // cluster writes (kms_cluster.go)
	msg      message                                          // the decoded request, for the audit record (audit_kms.go)
}

// handleKMS serves POST /v1/kms[/{enclave}]: it decodes every frame,
// authorises every frame, and only then runs them (kms_batch.go). The
// request fails as a whole on the first error: writes are all or nothing,
// and a successful read answers with one frame per request frame, same
// command code, in order, within a size budget.
//
// The router has decided that the caller is root or an identity of the
// enclave, and read the body (routes.go). /v1/kms: enclave commands name
// their enclave in the message; everything else (MINIO_KMS_ENCLAVE="")
// goes to DefaultEnclave, the route's enclave.
func (s *Server) handleKMS(w http.ResponseWriter, r *http.Request, in routeReq) {
	req := request{identity: in.identity, enclave: in.enclave}
	ctx := in.ctx
	frames, err := wire.DecodeFrames(in.body)
	if err != nil {
		writeError(w, r, s.log, badRequest("malformed request: %s", inputDetail(err)))
		return
	}
	if len(frames) > 0 && frames[0].Cmd.Known() {
		noteCommand(w, frames[0].Cmd) // observe.go: a bounded label
	}
	calls := make([]call, len(frames))
	for i, f := range frames {
		if !f.Cmd.Known() {
			writeError(w, r, s.log, badRequest("unknown command %d", uint16(f.Cmd)))
			return
		}
		if f.Cmd.IsWrite() != frames[0].Cmd.IsWrite() {
			writeError(w, r, s.log, errMixedCommands)
			return
		}
		if calls[i], err = s.decode(req, f); err != nil {
			writeError(w, r, s.log, err)
			return
		}
	}
	auditCalls(w, calls)
	s.proj.View(func(st *projections.State) {
		for _, c := range calls {
			if err = authorize(st, req.identity, req.enclave, c.cmd, c.resource); err != nil {
				return
			}
		}
	})
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	var answer []byte
	if frames[0].Cmd.IsWrite() {
		err = s.runWrites(ctx, req, calls) // kms_batch.go
	} else {
		answer, err = s.runReads(ctx, w, calls)
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeBody(w, "application/octet-stream", answer)
}

// decode parses a frame into a call. Names are validated by commands (for
// writes) or found absent by lookups (for reads), never trusted here.
func (s *Server) decode(req request, f wire.Frame) (call, error) {
	c := call{cmd: f.Cmd}
	var m message
	switch f.Cmd {
	case wire.CmdEnclaveCreate:
		m = new(wire.CreateEnclaveRequest)
	case wire.CmdEnclaveDelete:
		m = new(wire.DeleteEnclaveRequest)
	case wire.CmdEnclaveStatus:
		m = new(wire.EnclaveStatusRequest)
	case wire.CmdEnclaveList, wire.CmdKeyList, wire.CmdPolicyList, wire.CmdIdentityList:
		m = new(wire.ListRequest)
	case wire.CmdKeyCreate:
		m = new(wire.CreateKeyRequest)
	case wire.CmdKeyImport:
		m = new(wire.ImportKeyRequest)
	case wire.CmdKeyDelete:
		m = new(wire.DeleteKeyRequest)
	case wire.CmdKeyStatus:
		m = new(wire.KeyStatusRequest)
	case wire.CmdKeyEncrypt:
		m = new(wire.EncryptRequest)
	case wire.CmdKeyDecrypt:
		m = new(wire.DecryptRequest)
	case wire.CmdKeyGenerate:
		m = new(wire.GenerateKeyRequest)
	case wire.CmdKeyMAC:
		m = new(wire.MACRequest)
	case wire.CmdPolicyCreate:
		m = new(wire.CreatePolicyRequest)
	case wire.CmdPolicyDelete:
		m = new(wire.DeletePolicyRequest)
	case wire.CmdPolicyAssign:
		m = new(wire.AssignPolicyRequest)
	case wire.CmdPolicyGet, wire.CmdPolicyStatus:
		m = new(wire.PolicyRequest)
	case wire.CmdIdentityCreate:
		m = new(wire.CreateIdentityRequest)
	case wire.CmdIdentityDelete:
		m = new(wire.DeleteIdentityRequest)
	case wire.CmdIdentityStatus:
		m = new(wire.IdentityRequest)
	default:
		return s.decodeOps(req, f) // cluster commands, KEY:LISTVERSIONS (kms_cluster.go)
	}
	if err := m.UnmarshalProto(f.Body); err != nil {
		return c, badRequest("malformed %s message: %s", f.Cmd, inputDetail(err))
	}
	if err := parseAtEdge(m); err != nil {
		return c, err
	}
	if f.Cmd.IsWrite() {
		var err error
		if c.resource, c.write, err = writeCommand(req, m); err != nil {
			return c, err
		}
	} else {
		c.resource, c.run = s.bind(req, f.Cmd, m)
	}
	c.msg = m
	return c, nil
}

// bind returns the authorisation resource of a decoded read message and
// the function that executes it.
func (s *Server) bind(req request, cmd wire.Command, m message) (string, func(context.Context) (message, error)) {
	e := req.enclave
	switch m := m.(type) {
	case *wire.EnclaveStatusRequest:
		return m.Name, func(ctx context.Context) (message, error) { return s.enclaveStatus(ctx, m.Name) }
	case *wire.KeyStatusRequest:
		return m.Name, func(ctx context.Context) (message, error) { return s.keyStatus(ctx, e, m) }
	case *wire.EncryptRequest:
		return m.Name, func(ctx context.Context) (message, error) { return s.encrypt(ctx, e, m) }
	case *wire.DecryptRequest:
		return m.Name, func(ctx context.Context) (message, error) { return s.decrypt(ctx, e, m) }
	case *wire.GenerateKeyRequest:
		return m.Name, func(ctx context.Context) (message, error) { return s.generateKey(ctx, e, m) }
	case *wire.MACRequest:
		return m.Name, func(ctx context.Context) (message, error) { return s.mac(ctx, e, m) }
	case *wire.PolicyRequest:
		if cmd == wire.CmdPolicyStatus {
			return m.Name, func(ctx context.Context) (message, error) { return s.policyStatus(ctx, e, m.Name) }
		}
		return m.Name, func(ctx context.Context) (message, error) { return s.policy(ctx, e, m.Name) }
	case *wire.IdentityRequest:
		return m.Identity, func(ctx context.Context) (message, error) { return s.identity(ctx, e, m.Identity) }
	case *wire.ListRequest:
		return "", func(ctx context.Context) (message, error) { return s.list(ctx, e, cmd, m) }
	}
	panic(fmt.Sprintf("api: bind: unhandled message %T", m))
}

// writeCommand returns the authorisation resource of a decoded write
// message and the command it asks for.
func writeCommand(req request, m message) (string, commands.Command, error) {
	e := req.enclave
	switch m := m.(type) {
	case *wire.CreateEnclaveRequest:
		return m.Name, commands.CreateEnclave{Name: m.Name}, nil
	case *wire.DeleteEnclaveRequest:
		return m.Name, commands.DeleteEnclave{Name: m.Name}, nil
	case *wire.CreateKeyRequest:
		return m.Name, commands.CreateKey{Enclave: e, Name: m.Name, Type: m.Type, AddVersion: m.AddVersion}, nil
	case *wire.ImportKeyRequest:
		return m.Name, commands.ImportKey{Enclave: e, Name: m.Name, Type: m.Type, Material: m.Key}, nil
	case *wire.DeleteKeyRequest:
		return m.Name, commands.DeleteKey{Enclave: e, Name: m.Name, Version: m.Version, All: m.AllVersions}, nil
	case *wire.CreatePolicyRequest:
		return m.Name, commands.CreatePolicy{Enclave: e, Name: m.Name, Allow: m.Allow, Deny: m.Deny}, nil
	case *wire.DeletePolicyRequest:
		return m.Name, commands.DeletePolicy{Enclave: e, Name: m.Name}, nil
	case *wire.AssignPolicyRequest:
		return m.Policy, commands.AssignPolicy{Enclave: e, Identity: m.Identity, Policy: m.Policy}, nil
	case *wire.CreateIdentityRequest:
		c, err := createIdentity(e, m)
		return m.Identity, c, err
	case *wire.DeleteIdentityRequest:
		return m.Identity, commands.DeleteIdentity{Enclave: e, Identity: m.Identity}, nil
	}
	panic(fmt.Sprintf("api: writeCommand: unhandled message %T", m))
}
