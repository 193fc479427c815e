package pkcs11

import (
	"errors"
	"fmt"
	"strings"

	p11 "github.com/miekg/pkcs11"
)

// findToken returns the slot and token the config names.
func findToken(ctx *p11.Ctx, cfg Config) (uint, p11.TokenInfo, error) {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, p11.TokenInfo{}, fmt.Errorf("%w %q: C_GetSlotList: %w", ErrModule, cfg.Module, err)
	}
	var (
		found   []uint
		info    p11.TokenInfo
		present []string // "label" in slot N, for the error message
	)
	for _, slot := range slots {
		ti, err := ctx.GetTokenInfo(slot)
		if err != nil {
			continue // A slot whose token went away.
		}
		present = append(present, fmt.Sprintf("%q in slot %d", ti.Label, slot))
		if cfg.Slot != nil && *cfg.Slot != slot || cfg.TokenLabel != "" && cfg.TokenLabel != ti.Label {
			continue
		}
		found, info = append(found, slot), ti
	}
	want := fmt.Sprintf("labelled %q", cfg.TokenLabel)
	switch {
	case cfg.Slot != nil && cfg.TokenLabel != "":
		want = fmt.Sprintf("labelled %q in slot %d", cfg.TokenLabel, *cfg.Slot)
	case cfg.Slot != nil:
		want = fmt.Sprintf("in slot %d", *cfg.Slot)
	}
	switch len(found) {
	case 0:
		tokens := "none"
		if len(present) > 0 {
			tokens = strings.Join(present, ", ")
		}
		return 0, info, fmt.Errorf("%w: no token %s in module %q (tokens present: %s)", ErrTokenNotFound, want, cfg.Module, tokens)
	case 1:
		return found[0], info, nil
	}
	return 0, info, fmt.Errorf("%w: %d tokens %s in module %q; set the slot", ErrAmbiguous, len(found), want, cfg.Module)
}

// checkTokenFlags rejects a token that cannot log in.
func checkTokenFlags(ti p11.TokenInfo) error {
	switch {
	case ti.Flags&p11.CKF_TOKEN_INITIALIZED == 0:
		return fmt.Errorf("%w: token %q is not initialised", ErrTokenNotFound, ti.Label)
	case ti.Flags&p11.CKF_USER_PIN_LOCKED != 0:
		return fmt.Errorf("%w: token %q: the user PIN is locked (too many wrong attempts)", ErrPIN, ti.Label)
	case ti.Flags&p11.CKF_USER_PIN_INITIALIZED == 0:
		return fmt.Errorf("%w: token %q: no user PIN is set", ErrPIN, ti.Label)
	}
	return nil
}

// findKeys returns the handles of the AES secret keys labelled label.
func findKeys(ctx *p11.Ctx, sh p11.SessionHandle, label string) ([]p11.ObjectHandle, error) {
	tmpl := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_LABEL, label),
	}
	if err := ctx.FindObjectsInit(sh, tmpl); err != nil {
		return nil, err
	}
	var all []p11.ObjectHandle
	for {
		objs, _, err := ctx.FindObjects(sh, 16)
		if err != nil {
			ctx.FindObjectsFinal(sh) //nolint:errcheck // reporting the first error
			return nil, err
		}
		if len(objs) == 0 {
			break
		}
		all = append(all, objs...)
	}
	return all, ctx.FindObjectsFinal(sh)
}

// tokenMechanisms reports whether the token offers AES-GCM for encryption
// and decryption, and AES-KWP for wrapping and unwrapping, with 32-byte
// keys.
func tokenMechanisms(ctx *p11.Ctx, slot uint) (gcm, kwp bool) {
	has := func(mech, flags uint) bool {
		mi, err := ctx.GetMechanismInfo(slot, []*p11.Mechanism{p11.NewMechanism(mech, nil)})
		return err == nil && mi.Flags&flags == flags && mi.MinKeySize <= keyLen && keyLen <= mi.MaxKeySize
	}
	return has(p11.CKM_AES_GCM, p11.CKF_ENCRYPT|p11.CKF_DECRYPT),
		has(p11.CKM_AES_KEY_WRAP_PAD, p11.CKF_WRAP|p11.CKF_UNWRAP)
}

// keyFormats says which blob formats a key can open on its token.
type keyFormats struct{ gcm, kwp bool }

// has reports whether blobs starting with format can be opened.
func (k keyFormats) has(format byte) bool {
	return format == formatGCM && k.gcm || format == formatKWP && k.kwp
}

// chooseFormat picks what Wrap produces: AES-GCM if the token and key
// allow it, else AES-KWP; force, if not 0, is the only one accepted. It
// also returns the formats Unwrap can open.
func chooseFormat(ctx *p11.Ctx, slot uint, sh p11.SessionHandle, key p11.ObjectHandle, force byte) (byte, keyFormats, error) {
	attrs, err := ctx.GetAttributeValue(sh, key, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_VALUE_LEN, nil),
		p11.NewAttribute(p11.CKA_ENCRYPT, nil),
		p11.NewAttribute(p11.CKA_DECRYPT, nil),
		p11.NewAttribute(p11.CKA_WRAP, nil),
		p11.NewAttribute(p11.CKA_UNWRAP, nil),
	})
	if err != nil {
		return 0, keyFormats{}, fmt.Errorf("read key attributes: %w", err)
	}
	v := make(map[uint][]byte, len(attrs))
	for _, a := range attrs {
		v[a.Type] = a.Value
	}
	if n, ok := ulong(v[p11.CKA_VALUE_LEN]); !ok || n != keyLen {
		return 0, keyFormats{}, fmt.Errorf("%w: the key is not AES-256 (CKA_VALUE_LEN %d)", ErrUnsupported, n)
	}
	isTrue := func(t uint) bool { return len(v[t]) == 1 && v[t][0] != 0 }
	tokenGCM, tokenKWP := tokenMechanisms(ctx, slot)
	gcm := tokenGCM && isTrue(p11.CKA_ENCRYPT) && isTrue(p11.CKA_DECRYPT)
	kwp := tokenKWP && isTrue(p11.CKA_WRAP) && isTrue(p11.CKA_UNWRAP)
	if force != 0 {
		gcm, kwp = gcm && force == formatGCM, kwp && force == formatKWP
	}
	switch {
	case gcm:
		return formatGCM, keyFormats{gcm, kwp}, nil
	case kwp:
		return formatKWP, keyFormats{gcm, kwp}, nil
	}
	return 0, keyFormats{}, fmt.Errorf("%w: need CKM_AES_GCM on the token with CKA_ENCRYPT and CKA_DECRYPT on the key "+
		"(token: %v, key: %v/%v), or CKM_AES_KEY_WRAP_PAD with CKA_WRAP and CKA_UNWRAP (token: %v, key: %v/%v)",
		ErrUnsupported, tokenGCM, isTrue(p11.CKA_ENCRYPT), isTrue(p11.CKA_DECRYPT),
		tokenKWP, isTrue(p11.CKA_WRAP), isTrue(p11.CKA_UNWRAP))
}

// sessionBroken reports whether err may have left the session unusable;
// the session is then replaced. Errors about the data end the operation
// and leave the session as it was (PKCS#11 v2.40 §5.8, §5.9).
func sessionBroken(err error) bool {
	var code p11.Error
	if !errors.As(err, &code) {
		return true
	}
	switch code {
	case p11.CKR_ENCRYPTED_DATA_INVALID, p11.CKR_ENCRYPTED_DATA_LEN_RANGE, p11.CKR_DATA_INVALID, p11.CKR_DATA_LEN_RANGE,
		p11.CKR_WRAPPED_KEY_INVALID, p11.CKR_WRAPPED_KEY_LEN_RANGE, ckrAEADDecryptFailed:
		return false
	}
	return true
}
