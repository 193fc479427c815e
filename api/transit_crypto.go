package api

// Crypto endpoints of the Transit API (transit.go): encrypt (with upsert),
// decrypt, rewrap, datakey; hmac, verify, random and hash are in
// transit_mac.go. Every request is one item or a batch_input of items,
// each answered on its own.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"

	"github.com/kmsledger/kmsledger/api/transit"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm"
)

// Vault's words for the item errors clients see.
const (
	msgDerivedContext = "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key"
	msgMixedContext   = "context should be set either in all the request blocks or in none"
	msgNoSuchVersion  = "no such key version"
)

// cryptoReq is one crypto request on one key: its state and the unsealed
// versions it used so far.
type cryptoReq struct {
	v    *vaultAPI
	ctx  context.Context
	name string
	ks   keyState
	keys map[uint32]*hsm.Key
}

// key returns version n (0 = latest) of the key, usable for crypto.
func (c *cryptoReq) key(n uint32) (*hsm.Key, error) {
	if n == 0 {
		n = c.ks.latest
	}
	if k := c.keys[n]; k != nil {
		return k, nil
	}
	k, _, err := c.v.s.keys.UsableKey(c.ctx, c.v.enclave, c.name, n)
	if isNotFound(err) {
		return nil, vaultBad(msgNoSuchVersion)
	}
	if err != nil {
		return nil, err
	}
	c.keys[n] = k
	return k, nil
}

// item runs fn on each item of the request: batch_input if present (at
// most transitMaxBatch), else the request itself, and answers.
func (v *vaultAPI) items(w http.ResponseWriter, r *http.Request, f transit.Fields, fn func(item transit.Fields) (map[string]any, error), warnings ...string) {
	batch, isBatch, err := f.Items("batch_input")
	switch {
	case err != nil:
		v.fail(w, r, vaultBad(err.Error()))
		return
	case isBatch && len(batch) == 0:
		v.fail(w, r, vaultBad("missing batch input to process"))
		return
	case len(batch) > transitMaxBatch:
		v.fail(w, r, vaultBad("batch_input holds "+strconv.Itoa(len(batch))+" items: at most "+strconv.Itoa(transitMaxBatch)))
		return
	}
	if !isBatch {
		out, err := fn(f)
		if err != nil {
			v.fail(w, r, err)
			return
		}
		v.reply(w, out, warnings...)
		return
	}
	results := make([]map[string]any, len(batch))
	failed, internal := 0, false
	for i, it := range batch {
		ref, _, _ := it.String("reference")
		out, err := fn(it)
		if err != nil {
			failed++
			status, msg := v.itemError(r, err)
			internal = internal || status >= 500
			out = map[string]any{"error": msg}
		}
		if valid, ok := out["valid"].(bool); ok && !valid {
			delete(out, "valid") // Vault omits a false "valid" in batch results
		}
		out["reference"] = ref
		results[i] = out
	}
	status := http.StatusOK
	if failed > 0 {
		status = http.StatusBadRequest
		if internal {
			status = http.StatusInternalServerError
		}
		if code, ok, err := f.Int("partial_failure_response_code"); err == nil && ok && failed < len(batch) {
			if code >= 1 && code <= 599 {
				status = int(code)
			} else {
				warnings = append(warnings, "partial_failure_response_code is out of range: ignored")
			}
		}
	}
	resp := transit.NewResponse(map[string]any{"batch_results": results})
	resp.MountType, resp.Warnings = "transit", warnings
	v.writeJSON(w, status, resp)
}

// itemError is the status and message of a failed batch item; internal
// errors are logged and answered "internal error".
func (v *vaultAPI) itemError(r *http.Request, err error) (int, string) {
	var ve *vaultError
	if errors.As(err, &ve) {
		return ve.status, ve.msg
	}
	status, msg := resolveError(err, transitErrorTable, errorTable)
	if status >= 500 {
		v.s.log.Error("batch item failed", "route", r.Pattern, "path", logPath(r), "err", err)
	}
	return status, msg
}

// b64 decodes an optional base64 field; a bad one is a 400 in Vault's
// words ("failed to base64-decode context").
func b64(f transit.Fields, name string) ([]byte, error) {
	b, _, err := f.Base64(name)
	if err != nil {
		return nil, vaultBad("failed to base64-decode " + name)
	}
	return b, nil
}

// prepare reads the key of a crypto request; a missing key is Vault's
// "encryption key not found".
func (v *vaultAPI) prepare(ctx context.Context, name string) (*cryptoReq, error) {
	ks, err := v.keyState(ctx, name)
	if err != nil {
		return nil, err
	}
	if ks.latest == 0 {
		return nil, vaultBad("encryption key not found")
	}
	return &cryptoReq{v: v, ctx: ctx, name: name, ks: ks, keys: map[uint32]*hsm.Key{}}, nil
}

// contexts checks that every item or none carries a context, and says
// whether the first one does.
func contexts(f transit.Fields) (first bool, err error) {
	batch, ok, _ := f.Items("batch_input")
	if !ok {
		return f.Has("context"), nil
	}
	if len(batch) == 0 {
		return false, nil
	}
	first = batch[0].Has("context")
	for _, it := range batch[1:] {
		if it.Has("context") != first {
			return false, vaultBad(msgMixedContext)
		}
	}
	return first, nil
}

// POST encrypt/{name}. A missing key is created (upsert) when the caller
// may create keys and upsert is not disabled: of the request's type,
// derived when the first item carries a context.
func (v *vaultAPI) encrypt(w http.ResponseWriter, r *http.Request, in routeReq) {
	name, err := keyName(in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	f, err := fields(r, in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	withContext, err := contexts(f)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	var warnings []string
	c, err := v.prepare(in.ctx, name)
	if isNotFound(err) {
		if v.s.cfg.TransitDisableUpsert {
			v.fail(w, r, vaultBad("encryption key not found"))
			return
		}
		typ, oerr := createOptions(transit.Fields{"type": f["type"], "convergent_encryption": f["convergent_encryption"]})
		if oerr != nil {
			v.fail(w, r, oerr)
			return
		}
		err = v.createTransitKey(in.ctx, in.identity, name, typ, withContext)
		if errors.Is(err, commands.ErrKeyExists) {
			err, warnings = nil, []string{"Attempted creation of the key during the encrypt operation, but it was created beforehand"}
		}
		if err != nil {
			v.fail(w, r, err)
			return
		}
		c, err = v.prepare(in.ctx, name)
	}
	if err != nil {
		v.fail(w, r, err)
		return
	}
	v.items(w, r, f, c.encryptItem, warnings...)
}

// encryptItem encrypts one item: plaintext, context, associated_data,
// key_version.
func (c *cryptoReq) encryptItem(f transit.Fields) (map[string]any, error) {
	if !f.Has("plaintext") {
		return nil, vaultBad("missing plaintext to encrypt")
	}
	pt, _, err := f.Base64("plaintext")
	if err != nil {
		return nil, vaultBad(err.Error())
	}
	defer clear(pt)
	return c.seal(f, pt)
}

// seal encrypts pt under the item's key_version (0 = latest) with its
// context and associated_data.
func (c *cryptoReq) seal(f transit.Fields, pt []byte) (map[string]any, error) {
	context, err := b64(f, "context")
	if err != nil {
		return nil, err
	}
	ad, err := b64(f, "associated_data")
	if err != nil {
		return nil, err
	}
	if f.Has("nonce") {
		return nil, vaultBad("nonce provided when not allowed")
	}
	n, _, err := f.Int("key_version")
	switch {
	case err != nil:
		return nil, vaultBad(err.Error())
	case n < 0:
		return nil, vaultBad("requested version for encryption is negative")
	case n > int64(c.ks.latest):
		return nil, vaultBad("requested version for encryption is higher than the latest key version")
	case n != 0 && n < int64(c.ks.settings.MinEncryptionVersion):
		return nil, vaultBad("requested version for encryption is less than the minimum encryption key version")
	}
	derived := c.ks.settings.Derived
	if derived && len(context) == 0 {
		return nil, vaultBad(msgDerivedContext)
	}
	k, err := c.key(uint32(n))
	if err != nil {
		return nil, err
	}
	ct, err := k.TransitEncrypt(pt, context, ad, derived)
	if err != nil {
		return nil, err
	}
	return map[string]any{"ciphertext": transit.FormatCiphertext(k.Version(), ct), "key_version": k.Version()}, nil
}

// open decrypts the item's ciphertext with its context and, unless
// noAD, associated_data.
func (c *cryptoReq) open(f transit.Fields, noAD bool) ([]byte, error) {
	s, ok, err := f.String("ciphertext")
	if err != nil || !ok || s == "" {
		return nil, vaultBad("missing ciphertext to decrypt")
	}
	context, err := b64(f, "context")
	if err != nil {
		return nil, err
	}
	var ad []byte
	if !noAD {
		if ad, err = b64(f, "associated_data"); err != nil {
			return nil, err
		}
	}
	version, encoded, err := transit.SplitCiphertext(s)
	if err != nil {
		return nil, vaultBad(err.Error())
	}
	switch {
	case version > c.ks.maxVer:
		return nil, vaultBad("invalid ciphertext: version is too new")
	case version < max(c.ks.settings.MinDecryptionVersion, 1):
		return nil, vaultBad("ciphertext or signature version is disallowed by policy (too old)")
	}
	body, err := transit.DecodeBody(encoded)
	if err != nil {
		return nil, vaultBad(err.Error())
	}
	derived := c.ks.settings.Derived
	if derived && len(context) == 0 {
		return nil, vaultBad(msgDerivedContext)
	}
	k, err := c.key(version)
	if err != nil {
		return nil, err
	}
	return k.TransitDecrypt(body, context, ad, derived)
}

// POST decrypt/{name}: a missing key is never created.
func (v *vaultAPI) decrypt(w http.ResponseWriter, r *http.Request, in routeReq) {
	v.onKey(w, r, in, func(c *cryptoReq, f transit.Fields) (map[string]any, error) {
		pt, err := c.open(f, false)
		if err != nil {
			return nil, err
		}
		defer clear(pt)
		return map[string]any{"plaintext": base64.StdEncoding.EncodeToString(pt)}, nil
	})
}

// POST rewrap/{name}: decrypt and encrypt under key_version (0 =
// latest) inside the server; no associated data, as in Vault.
func (v *vaultAPI) rewrap(w http.ResponseWriter, r *http.Request, in routeReq) {
	v.onKey(w, r, in, func(c *cryptoReq, f transit.Fields) (map[string]any, error) {
		pt, err := c.open(f, true)
		if err != nil {
			return nil, err
		}
		defer clear(pt)
		return c.seal(transit.Fields{"context": f["context"], "key_version": f["key_version"]}, pt)
	})
}

// onKey runs a per-item operation on an existing key.
func (v *vaultAPI) onKey(w http.ResponseWriter, r *http.Request, in routeReq, fn func(*cryptoReq, transit.Fields) (map[string]any, error)) {
	name, err := keyName(in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	f, err := fields(r, in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	if _, err := contexts(f); err != nil {
		v.fail(w, r, err)
		return
	}
	c, err := v.prepare(in.ctx, name)
	if isNotFound(err) {
		err = vaultBad("encryption key not found")
	}
	if err != nil {
		v.fail(w, r, err)
		return
	}
	v.items(w, r, f, func(it transit.Fields) (map[string]any, error) { return fn(c, it) })
}

// POST datakey/{plaintext|wrapped}/{name}: random bytes encrypted as
// encrypt would; the plaintext only on the plaintext path.
func (v *vaultAPI) datakey(w http.ResponseWriter, r *http.Request, in routeReq) {
	kind := r.PathValue("kind")
	if kind != "plaintext" && kind != "wrapped" {
		v.fail(w, r, vaultBad("Invalid path, must be 'plaintext' or 'wrapped'"))
		return
	}
	v.onKey(w, r, in, func(c *cryptoReq, f transit.Fields) (map[string]any, error) {
		bits, ok, err := f.Int("bits")
		switch {
		case err != nil:
			return nil, vaultBad(err.Error())
		case !ok:
			bits = 256
		case bits != 128 && bits != 256 && bits != 512:
			return nil, vaultBad("invalid bit length")
		}
		pt := make([]byte, bits/8)
		rand.Read(pt)
		defer clear(pt)
		out, err := c.seal(f, pt)
		if err != nil {
			return nil, err
		}
		if kind == "plaintext" {
			out["plaintext"] = base64.StdEncoding.EncodeToString(pt)
		}
		return out, nil
	})
}
