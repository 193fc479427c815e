package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// The admin API is JSON over the same mTLS listener. It carries what the
// kms wire protocol has no command for: key lifecycle (disable, enable,
// scheduled deletion, restore, release of a destroyed name), key details
// with every version's state, and rewrap.
//
//	GET  /v1/admin/{enclave}/keys[?prefix=P]          list with states
//	GET  /v1/admin/{enclave}/keys/{name}              one key, every version
//	POST /v1/admin/{enclave}/keys/{name}/disable      {"version":N}  (0 = whole key)
//	POST /v1/admin/{enclave}/keys/{name}/enable       {"version":N}
//	POST /v1/admin/{enclave}/keys/{name}/schedule-deletion {"after":"7d"}
//	POST /v1/admin/{enclave}/keys/{name}/restore
//	POST /v1/admin/{enclave}/keys/{name}/release
//	POST /v1/admin/{enclave}/keys/{name}/rewrap       {"ciphertext":B64,"associated_data":B64}
//
// Lifecycle changes need root or an Admin of the enclave; reads follow the
// KEY:STATUS / KEY:LIST policy rules; rewrap needs KEY:DECRYPT and
// KEY:ENCRYPT on the key. The router (routes.go) decides access before it
// reads a body.

const maxAdminBody = 64 << 10

// identityOf returns the client's identity, or "" without a certificate
// (callerOf).
func identityOf(r *http.Request) string { return callerOf(r) }

func keyInfo(k *projections.Key) wire.KeyInfo {
	info := wire.KeyInfo{Name: k.Name, State: "enabled", CreatedAt: k.CreatedAt(), CreatedBy: k.CreatedBy}
	switch {
	case !k.DeletionDeadline().IsZero():
		d := k.DeletionDeadline()
		info.State, info.DeletionDeadline = "pending-deletion", &d
	case k.Disabled:
		info.State = "disabled"
	}
	for _, v := range k.SortedVersions() {
		vi := wire.VersionInfo{Version: v.Version, Type: v.Type, State: "enabled", CreatedAt: v.CreatedAt(), CreatedBy: v.CreatedBy,
			Fingerprint: v.Fingerprint()}
		if src := v.Source(); src != nil {
			vi.Source = &wire.ImportSource{Kind: src.Kind, Location: src.Location, Name: src.Name,
				CreatedAt: src.CreatedAt, CreatedBy: src.CreatedBy, Format: src.Format}
		}
		if v.Disabled {
			vi.State = "disabled"
		}
		if ns := v.LastUsed.Load(); ns != 0 {
			t := time.Unix(0, ns).UTC()
			vi.LastUsed = &t
		}
		vi.CiphertextFormat, vi.CiphertextAEAD = hsm.CiphertextFormat, hsm.CiphertextAEAD(hsm.KeyType(v.Type))
		u := v.Usage()
		vi.Usage = wire.VersionUsage{Encryptions: u.Encryptions, Decryptions: u.Decryptions, OldFormatDecryptions: u.OldFormatDecryptions}
		info.Versions = append(info.Versions, vi)
	}
	return info
}

func (s *Server) handleAdminKeyList(w http.ResponseWriter, r *http.Request, in routeReq) {
	prefix := r.URL.Query().Get("prefix")
	out := wire.KeyInfoList{Keys: []wire.KeyInfo{}}
	err := s.keys.ReadEnclave(in.ctx, in.enclave, func(e *projections.Enclave) error {
		out.Keys = out.Keys[:0]
		for _, n := range slices.Sorted(maps.Keys(e.Keys)) {
			if strings.HasPrefix(n, prefix) {
				out.Keys = append(out.Keys, keyInfo(e.Keys[n]))
			}
		}
		return nil
	})
	writeJSON(w, r, s, jsonMessage{out}, err)
}

func (s *Server) handleAdminKeyInfo(w http.ResponseWriter, r *http.Request, in routeReq) {
	var info wire.KeyInfo
	err := s.keys.ReadKey(in.ctx, in.enclave, in.arg, func(k *projections.Key) error {
		info = keyInfo(k)
		return nil
	})
	writeJSON(w, r, s, jsonMessage{info}, err)
}

// decodeAction decodes the optional JSON body of a key action.
func decodeAction(body []byte) (wire.KeyActionRequest, error) {
	var req wire.KeyActionRequest
	if len(body) == 0 {
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, badRequest("malformed JSON body: %v", err)
	}
	return req, nil
}

// handleAdminKeyRewrap serves .../rewrap: the router has checked
// KEY:DECRYPT and KEY:ENCRYPT on the key.
func (s *Server) handleAdminKeyRewrap(w http.ResponseWriter, r *http.Request, in routeReq) {
	body, err := decodeAction(in.body)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	resp, err := s.rewrap(in.ctx, in.enclave, in.arg, body.Ciphertext, body.AssociatedData)
	writeJSON(w, r, s, jsonMessage{resp}, err)
}

// keyAction builds the command of one key lifecycle action from the key
// and the request body; a bad body is a 400 error.
type keyAction func(s *Server, enclave, name string, body wire.KeyActionRequest) (commands.Command, error)

// handleKeyAction returns the handler of one lifecycle action route: the
// router has checked that the caller is root or an Admin of the enclave
// (lifecycle changes are not grantable by policy: the kms-go client
// rejects policies naming commands it does not know).
func (s *Server) handleKeyAction(build keyAction) func(http.ResponseWriter, *http.Request, routeReq) {
	return func(w http.ResponseWriter, r *http.Request, in routeReq) {
		body, err := decodeAction(in.body)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		cmd, err := build(s, in.enclave, in.arg, body)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		cmd = commands.Checked{Command: cmd, Check: adminCheck(in.identity, in.enclave)}
		if _, err := s.h.Execute(in.ctx, in.identity, "", cmd); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		writeBody(w, "application/json", []byte("{}"))
	}
}

// handleUnknownKeyAction answers a POST to .../keys/{name}/{action} whose
// action no route names: 404, once the caller passed the Admin check and
// the body decoded, as every action route would.
func (s *Server) handleUnknownKeyAction(w http.ResponseWriter, r *http.Request, in routeReq) {
	if _, err := decodeAction(in.body); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeError(w, r, s.log, &statusError{http.StatusNotFound, fmt.Sprintf("unknown key action %q", r.PathValue("action"))})
}

// disableKey is POST .../disable {"version":N} (0 = the whole key).
func disableKey(_ *Server, enclave, name string, body wire.KeyActionRequest) (commands.Command, error) {
	return commands.DisableKey{Enclave: enclave, Name: name, Version: body.Version}, nil
}

// enableKey is POST .../enable {"version":N} (0 = the whole key).
func enableKey(_ *Server, enclave, name string, body wire.KeyActionRequest) (commands.Command, error) {
	return commands.EnableKey{Enclave: enclave, Name: name, Version: body.Version}, nil
}

// scheduleKeyDeletion is POST .../schedule-deletion {"after":"7d"}: the
// deadline is the handler's clock plus a positive duration.
func scheduleKeyDeletion(s *Server, enclave, name string, body wire.KeyActionRequest) (commands.Command, error) {
	d, err := wire.ParseDuration(body.After)
	if err != nil || d <= 0 {
		return nil, badRequest("invalid \"after\" %q: want a positive duration such as 7d or 36h", body.After)
	}
	return commands.ScheduleKeyDeletion{Enclave: enclave, Name: name, Deadline: s.h.Now().Add(d)}, nil
}

// restoreKey is POST .../restore: it cancels a scheduled deletion.
func restoreKey(_ *Server, enclave, name string, _ wire.KeyActionRequest) (commands.Command, error) {
	return commands.RestoreKey{Enclave: enclave, Name: name}, nil
}

// releaseKeyName is POST .../release: the name of a destroyed key may be
// used again.
func releaseKeyName(_ *Server, enclave, name string, _ wire.KeyActionRequest) (commands.Command, error) {
	return commands.ReleaseKeyName{Enclave: enclave, Name: name}, nil
}

// rewrap decrypts a ciphertext and encrypts the plaintext under the
// latest version of the same key (keys.Service.Rewrap).
func (s *Server) rewrap(ctx context.Context, enclave, name string, ciphertext, ad []byte) (*wire.RewrapResponse, error) {
	v, ct, err := s.keys.Rewrap(ctx, enclave, name, ciphertext, ad)
	if err != nil {
		return nil, err
	}
	return &wire.RewrapResponse{Version: v, Ciphertext: ct}, nil
}

// jsonMessage lets JSON answers go through writeJSON, which deals in messages.
type jsonMessage struct{ v any }

func (j jsonMessage) MarshalProto() []byte { b, _ := json.Marshal(j.v); return b }
func (j jsonMessage) UnmarshalProto([]byte) error {
	return errors.New("api: jsonMessage is write-only")
}

func writeJSON(w http.ResponseWriter, r *http.Request, s *Server, m message, err error) {
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeBody(w, "application/json", m.MarshalProto())
}

// handleAdminKeyImport imports key material with provenance (migrations):
// root or an enclave Admin only (decided by the router). An import of
// material the key already holds answers "unchanged", so re-running a
// migration changes nothing. command_id is scoped to the key: replayed for
// the same key it answers what the first import answered (with
// "replayed": true) and writes nothing; for another key or enclave it is a
// new import.
func (s *Server) handleAdminKeyImport(w http.ResponseWriter, r *http.Request, in routeReq) {
	enclave, name := in.enclave, in.arg
	var req wire.KeyImportRequest
	dec := json.NewDecoder(bytes.NewReader(in.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, r, s.log, badRequest("malformed JSON body: %v", err))
		return
	}
	defer clear(req.Key)
	defer clear(req.HMACKey)
	cmd := commands.ImportKey{Enclave: enclave, Name: name, Type: req.Type, Material: req.Key, HMACKey: req.HMACKey}
	switch req.OnConflict {
	case "", "abort":
	case "skip":
		cmd.OnConflict = commands.ConflictSkip
	case "replace":
		cmd.OnConflict = commands.ConflictReplace
	default:
		writeError(w, r, s.log, badRequest("invalid on_conflict %q: want abort, skip or replace", req.OnConflict))
		return
	}
	if src := req.Source; src != nil {
		cmd.Source = &ledger.ImportSource{Kind: src.Kind, Location: src.Location, Name: src.Name,
			CreatedAt: src.CreatedAt, CreatedBy: src.CreatedBy, Format: src.Format}
	}
	ctx := in.ctx
	resp := wire.KeyImportResponse{Result: "imported"}
	res, err := s.h.Run(ctx, in.identity, req.CommandID, commands.Checked{Command: cmd, Check: adminCheck(in.identity, enclave)})
	switch {
	case errors.Is(err, commands.ErrUnchanged):
		resp.Result, err = "unchanged", nil
	case errors.Is(err, commands.ErrSkipped):
		resp.Result, err = "skipped", nil
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if res.Seq != 0 {
		// The answer of the event appended, or for a replayed command id
		// the answer of the first execution.
		var p ledger.KeyCreated
		if json.Unmarshal(res.Event.Payload, &p) == nil {
			resp.Version = p.Version
			if p.Source != nil && p.Source.Replaced {
				resp.Result = "replaced"
			}
		}
		resp.Replayed = res.Replayed
	}
	writeJSON(w, r, s, jsonMessage{resp}, nil)
}
