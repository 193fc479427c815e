package api

import (
	"net/http"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/projections"
	authz "github.com/kmsledger/kmsledger/projections/access"
)

// Grant is one identity allowed to run a command, and why (the JSON type
// of the who-can endpoint).
type Grant = client.Grant

// WhoCan returns every identity that st allows to run cmd (a command's
// text name, e.g. "KEY:DECRYPT") on resource key in enclave, and why
// (authz.WhoCan): the root identity, Admins of the enclave, Users
// through which policy and which allow rule (a matching deny rule wins),
// and service accounts through their parent. key is the command's
// argument as authorize sees it: a key name for KEY:*, a policy name for
// POLICY:*, an identity for IDENTITY:*, "" for listings. The root
// identity comes first, then the enclave's identities by name. An unknown
// command gives nil.
//
// The grants are those of authz.Explain, which authorize also asks, so
// an identity is listed if and only if authorize allows it
// (TestWhoCanMatchesAuthorize checks this over a grid).
func WhoCan(st *projections.State, enclave, key string, cmd string) []Grant {
	c, err := wire.ParseCommand(cmd)
	if err != nil {
		return nil
	}
	grants := authz.WhoCan(st, enclave, key, c)
	if grants == nil {
		return nil
	}
	out := make([]Grant, len(grants))
	for i, g := range grants {
		out[i] = client.Grant(g)
	}
	return out
}

func (s *Server) handleWhoCan(w http.ResponseWriter, r *http.Request, in routeReq) {
	q := r.URL.Query()
	enclave, key, command := q.Get("enclave"), q.Get("key"), q.Get("command")
	p, err := pointParam(q)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	c, err := wire.ParseCommand(command)
	switch {
	case err != nil:
		writeError(w, r, s.log, badRequest("invalid command %q: want e.g. KEY:DECRYPT", command))
		return
	case enclave == "":
		writeError(w, r, s.log, badRequest("the enclave parameter is required"))
		return
	case isList(c):
		key = ""
	case key == "":
		writeError(w, r, s.log, badRequest("the key parameter is required for %s", c))
		return
	}
	st, err := s.pastState(in.ctx, in.scope, p)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := client.WhoCanResult{Seq: st.Seq, Enclave: enclave, Key: key, Command: c.String(), Grants: WhoCan(st, enclave, key, c.String())}
	if out.Grants == nil {
		out.Grants = []Grant{}
	}
	writeJSON(w, r, s, jsonMessage{out}, nil)
}
