package api

// Key endpoints of the Transit API (transit.go): create, read, list,
// config, rotate, delete, and the mount's config/keys.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/kmsledger/kmsledger/api/transit"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/projections"
)

// keyData is the "data" of a key read: every field vaultrs requires, typed
// as Vault types them.
func keyData(k *projections.Key) map[string]any {
	versions := map[string]int64{}
	typ := transit.TypeAES256
	var latest, oldest uint32
	for _, v := range k.SortedVersions() {
		versions[strconv.FormatUint(uint64(v.Version), 10)] = unixTime(v.CreatedAt())
		typ = transit.TransitType(v.Type)
		latest = v.Version
		if oldest == 0 {
			oldest = v.Version
		}
	}
	minAvailable := uint32(0)
	if oldest > 1 {
		minAvailable = oldest
	}
	t := k.Transit()
	d := map[string]any{
		"name":                   k.Name,
		"type":                   typ,
		"keys":                   versions,
		"latest_version":         latest,
		"min_available_version":  minAvailable,
		"min_decryption_version": max(t.MinDecryptionVersion, 1),
		"min_encryption_version": t.MinEncryptionVersion,
		"deletion_allowed":       t.DeletionAllowed,
		"derived":                t.Derived,
		"exportable":             false,
		"allow_plaintext_backup": false,
		"supports_encryption":    true,
		"supports_decryption":    true,
		"supports_derivation":    true,
		"supports_signing":       false,
		"auto_rotate_period":     0,
		"imported_key":           false,
	}
	if t.Derived {
		d["kdf"] = "hkdf_sha256"
		d["convergent_encryption"] = false
	}
	return d
}

// readKeyData reads key name as keyData; a missing key is
// projections.ErrKeyNotFound.
// replyKey answers with key name as Vault shows it, after a write.
func (v *vaultAPI) replyKey(w http.ResponseWriter, r *http.Request, ctx context.Context, name string, warnings ...string) {
	d, err := v.readKeyData(ctx, name)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	v.reply(w, d, warnings...)
}

func (v *vaultAPI) readKeyData(ctx context.Context, name string) (map[string]any, error) {
	var d map[string]any
	err := v.s.keys.ReadKey(ctx, v.enclave, name, func(k *projections.Key) error {
		d = keyData(k)
		return nil
	})
	return d, err
}

// keyState is what the crypto endpoints need of a key: its settings and
// versions.
type keyState struct {
	settings projections.TransitSettings
	latest   uint32 // newest live version (0: none left)
	maxVer   uint32 // newest version ever
	typ      string // type of the newest live version
}

func (v *vaultAPI) keyState(ctx context.Context, name string) (keyState, error) {
	var ks keyState
	err := v.s.keys.ReadKey(ctx, v.enclave, name, func(k *projections.Key) error {
		ks = keyState{settings: k.Transit(), maxVer: k.MaxVer}
		if l := k.Latest(); l != nil {
			ks.latest, ks.typ = l.Version, l.Type
		}
		return nil
	})
	return ks, err
}

// GET keys/{name}: 404 {"errors":[]} for a missing key (SeaweedFS's
// health probe reads a key that does not exist).
func (v *vaultAPI) readKey(w http.ResponseWriter, r *http.Request, in routeReq) {
	name, err := keyName(in)
	if err != nil {
		v.fail(w, r, errVaultNotFound)
		return
	}
	d, err := v.readKeyData(in.ctx, name)
	if isNotFound(err) {
		err = errVaultNotFound
	}
	if err != nil {
		v.fail(w, r, err)
		return
	}
	v.reply(w, d)
}

// GET keys?list=true, LIST keys: the enclave's key names, sorted; none is
// 404 {"errors":[]}.
func (v *vaultAPI) listKeys(w http.ResponseWriter, r *http.Request, in routeReq) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		list, err := isListQuery(r)
		if err != nil {
			v.fail(w, r, err)
			return
		}
		if !list {
			v.fail(w, r, &vaultError{http.StatusMethodNotAllowed, "unsupported operation"})
			return
		}
	}
	names, err := v.s.keys.KeyNames(in.ctx, v.enclave, "")
	if err == nil && len(names) == 0 {
		err = errVaultNotFound
	}
	if err != nil {
		v.fail(w, r, err)
		return
	}
	v.reply(w, map[string]any{"keys": names})
}

// createOptions reads the key options of a create (or upsert) request:
// the kmsledger key type. Options kmsledger keys cannot have are refused.
func createOptions(f transit.Fields) (typ string, err error) {
	t, ok, err := f.String("type")
	if err != nil {
		return "", vaultBad(err.Error())
	}
	if !ok || t == "" {
		t = transit.TypeAES256
	}
	typ, known := transit.KeyType(t)
	if !known {
		return "", vaultBad(fmt.Sprintf("unknown key type %s: kmsledger keys are %s or %s", t, transit.TypeAES256, transit.TypeChaCha20))
	}
	for _, opt := range []string{"convergent_encryption", "exportable", "allow_plaintext_backup"} {
		if b, _, err := f.Bool(opt); err != nil {
			return "", vaultBad(err.Error())
		} else if b {
			return "", vaultBad(opt + " is not supported: kmsledger never exports key material and has no convergent encryption")
		}
	}
	if d, _, err := f.Duration("auto_rotate_period"); err != nil {
		return "", vaultBad(err.Error())
	} else if d != 0 {
		return "", vaultBad("auto_rotate_period is not supported: rotate with keys/NAME/rotate")
	}
	return typ, nil
}

// createTransitKey creates key name of type typ and its Transit settings
// in one atomic append, if the caller may create keys.
func (v *vaultAPI) createTransitKey(ctx context.Context, identity, name, typ string, derived bool) error {
	check := commandCheck(identity, v.enclave, wire.CmdKeyCreate, name)
	_, err := v.s.h.ExecuteBatch(ctx, identity, []commands.Command{
		commands.Checked{Command: commands.CreateKey{Enclave: v.enclave, Name: name, Type: typ}, Check: check},
		commands.Checked{Command: commands.ConfigureTransitKey{Enclave: v.enclave, Name: name, Derived: derived}, Check: check},
	})
	return err
}

// POST keys/{name}: create; an existing key is answered as it is, with a
// warning, as Vault does.
func (v *vaultAPI) createKey(w http.ResponseWriter, r *http.Request, in routeReq) {
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
	typ, err := createOptions(f)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	derived, _, err := f.Bool("derived")
	if err != nil {
		v.fail(w, r, vaultBad(err.Error()))
		return
	}
	var warnings []string
	err = v.createTransitKey(in.ctx, in.identity, name, typ, derived)
	if errors.Is(err, commands.ErrKeyExists) {
		err, warnings = nil, []string{"key " + name + " already existed"}
	}
	if err != nil {
		v.fail(w, r, err)
		return
	}
	v.replyKey(w, r, in.ctx, name, warnings...)
}

// DELETE keys/{name}: only with deletion_allowed, decided again under the
// enclave's lock.
func (v *vaultAPI) deleteKey(w http.ResponseWriter, r *http.Request, in routeReq) {
	name, err := keyName(in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	allowed := commandCheck(in.identity, v.enclave, wire.CmdKeyDelete, name)
	check := func(st *projections.State) error {
		if err := allowed(st); err != nil {
			return err
		}
		e := st.Enclaves[v.enclave]
		if e == nil || e.Keys[name] == nil {
			return vaultBad("error deleting policy " + name + ": could not delete key; not found")
		}
		if !e.Keys[name].Transit().DeletionAllowed {
			return vaultBad("error deleting policy " + name + ": deletion is not allowed for this key")
		}
		return nil
	}
	cmd := commands.Checked{Command: commands.DeleteKey{Enclave: v.enclave, Name: name, All: true}, Check: check}
	if _, err := v.s.h.Execute(in.ctx, in.identity, "", cmd); err != nil {
		v.fail(w, r, err)
		return
	}
	noContent(w)
}

// POST keys/{name}/config: the key's Transit settings.
func (v *vaultAPI) configKey(w http.ResponseWriter, r *http.Request, in routeReq) {
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
	ks, err := v.keyState(in.ctx, name)
	if isNotFound(err) {
		err = vaultBad("no existing key named " + name + " could be found")
	}
	if err != nil {
		v.fail(w, r, err)
		return
	}
	old := ks.settings
	c := commands.ConfigureTransitKey{Enclave: v.enclave, Name: name, Derived: old.Derived, DeletionAllowed: old.DeletionAllowed,
		MinDecryptionVersion: old.MinDecryptionVersion, MinEncryptionVersion: old.MinEncryptionVersion}
	var warnings []string
	if b, ok, err := f.Bool("deletion_allowed"); err != nil {
		v.fail(w, r, vaultBad(err.Error()))
		return
	} else if ok {
		c.DeletionAllowed = b
	}
	for _, p := range []struct {
		field string
		dst   *uint32
	}{{"min_decryption_version", &c.MinDecryptionVersion}, {"min_encryption_version", &c.MinEncryptionVersion}} {
		n, ok, err := f.Int(p.field)
		switch {
		case err != nil:
			v.fail(w, r, vaultBad(err.Error()))
			return
		case ok && n < 0:
			v.fail(w, r, vaultBad(p.field+" cannot be negative"))
			return
		case ok && n > int64(ks.maxVer):
			v.fail(w, r, vaultBad(fmt.Sprintf("cannot set %s of %d, latest key version is %d", p.field, n, ks.maxVer)))
			return
		case ok:
			*p.dst = uint32(n)
		}
	}
	if f.Has("min_decryption_version") && c.MinDecryptionVersion == 0 {
		c.MinDecryptionVersion = 1
		warnings = append(warnings, "since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1")
	}
	if _, err := createOptions(transit.Fields{"exportable": f["exportable"], "allow_plaintext_backup": f["allow_plaintext_backup"],
		"auto_rotate_period": f["auto_rotate_period"]}); err != nil {
		v.fail(w, r, err)
		return
	}
	allowed := commandCheck(in.identity, v.enclave, wire.CmdKeyCreate, name)
	check := func(st *projections.State) error {
		if err := allowed(st); err != nil {
			return err
		}
		// Settings changed since they were read: another config won the
		// race, and this one would undo it.
		if e := st.Enclaves[v.enclave]; e != nil && e.Keys[name] != nil && e.Keys[name].Transit() != old {
			return &vaultError{http.StatusConflict, "the key's settings changed meanwhile: read them and try again"}
		}
		return nil
	}
	if _, err := v.s.h.Execute(in.ctx, in.identity, "", commands.Checked{Command: c, Check: check}); err != nil {
		v.fail(w, r, err)
		return
	}
	v.replyKey(w, r, in.ctx, name, warnings...)
}

// POST keys/{name}/rotate: a new version of the key's type.
func (v *vaultAPI) rotateKey(w http.ResponseWriter, r *http.Request, in routeReq) {
	name, err := keyName(in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	ks, err := v.keyState(in.ctx, name)
	if isNotFound(err) {
		err = vaultBad("key not found")
	}
	if err != nil {
		v.fail(w, r, err)
		return
	}
	cmd := commands.CreateKey{Enclave: v.enclave, Name: name, Type: ks.typ, AddVersion: true}
	check := commandCheck(in.identity, v.enclave, wire.CmdKeyCreate, name)
	if _, err := v.s.h.Execute(in.ctx, in.identity, "", commands.Checked{Command: cmd, Check: check}); err != nil {
		if isNotFound(err) {
			err = vaultBad("key not found")
		}
		v.fail(w, r, err)
		return
	}
	v.replyKey(w, r, in.ctx, name)
}

// GET config/keys: the mount's upsert setting.
func (v *vaultAPI) readConfig(w http.ResponseWriter, r *http.Request, in routeReq) {
	v.reply(w, map[string]any{"disable_upsert": v.s.cfg.TransitDisableUpsert})
}

// POST config/keys: the setting is the server's configuration.
func (v *vaultAPI) writeConfig(w http.ResponseWriter, r *http.Request, in routeReq) {
	f, err := fields(r, in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	b, ok, err := f.Bool("disable_upsert")
	switch {
	case err != nil:
		v.fail(w, r, vaultBad(err.Error()))
	case ok && b != v.s.cfg.TransitDisableUpsert:
		v.fail(w, r, vaultBad("disable_upsert is set in the server's configuration (transit: disable_upsert)"))
	default:
		v.reply(w, map[string]any{"disable_upsert": v.s.cfg.TransitDisableUpsert})
	}
}
