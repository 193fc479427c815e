package pkcs11

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	p11 "github.com/miekg/pkcs11"

	"github.com/kmsledger/kmsledger/hsm"
)

// PoolSize is the number of sessions an HSM keeps open for Wrap and
// Unwrap; at most this many operations run on the token at once.
const PoolSize = 4

// Errors of Open and CreateKey. Each names the module, token or key that
// failed, and never the PIN.
var (
	// ErrConfig means a Config is incomplete.
	ErrConfig = errors.New("pkcs11: invalid configuration")
	// ErrModule means the module cannot be loaded or initialised.
	ErrModule = errors.New("pkcs11: cannot use module")
	// ErrTokenNotFound means no token matches the label or slot, or the
	// token is not initialised.
	ErrTokenNotFound = errors.New("pkcs11: token not found")
	// ErrPIN means the token rejected the PIN (CKR_PIN_INCORRECT,
	// CKR_PIN_LOCKED, …) or its user PIN is locked or not set.
	ErrPIN = errors.New("pkcs11: PIN rejected")
	// ErrKeyNotFound means the token holds no AES key with the label.
	ErrKeyNotFound = errors.New("pkcs11: key not found")
	// ErrKeyExists is returned by CreateKey if a key with the label exists.
	ErrKeyExists = errors.New("pkcs11: key already exists")
	// ErrAmbiguous means several tokens or keys carry the label.
	ErrAmbiguous = errors.New("pkcs11: label is not unique")
	// ErrUnsupported means the token or the key supports neither AES-GCM
	// nor AES key wrap with padding, or the key is not AES-256.
	ErrUnsupported = errors.New("pkcs11: token or key unsupported")
	// ErrClosed is returned by Wrap and Unwrap after Close.
	ErrClosed = errors.New("pkcs11: HSM is closed")
)

// Config says which token and key to use.
type Config struct {
	// Module is the path of the PKCS#11 library, such as
	// /usr/lib/softhsm/libsofthsm2.so.
	Module string
	// TokenLabel selects the token by label; Slot by slot ID. At least one
	// must be set; if both are, the token in Slot must carry TokenLabel.
	TokenLabel string
	Slot       *uint
	// PIN is the user PIN. cmd reads it from an environment variable or a
	// file, never from a flag. String and LogValue redact it.
	PIN string
	// KeyLabel is the CKA_LABEL of the AES-256 key on the token.
	KeyLabel string
}

// String describes the configuration with the PIN redacted.
func (c Config) String() string {
	slot := "none"
	if c.Slot != nil {
		slot = strconv.FormatUint(uint64(*c.Slot), 10)
	}
	pin := "unset"
	if c.PIN != "" {
		pin = "redacted"
	}
	return fmt.Sprintf("pkcs11.Config{Module: %q, TokenLabel: %q, Slot: %s, PIN: %s, KeyLabel: %q}",
		c.Module, c.TokenLabel, slot, pin, c.KeyLabel)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer with the PIN redacted.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c Config) validate() error {
	var missing []string
	if c.Module == "" {
		missing = append(missing, "module path")
	}
	if c.TokenLabel == "" && c.Slot == nil {
		missing = append(missing, "token label or slot")
	}
	if c.PIN == "" {
		missing = append(missing, "PIN")
	}
	if c.KeyLabel == "" {
		missing = append(missing, "key label")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrConfig, strings.Join(missing, ", "))
	}
	return nil
}

// HSM is an AES-256 key on a PKCS#11 token. It implements hsm.Wrapper and
// is safe for concurrent use. Close it when done.
type HSM struct {
	mod    *module
	ctx    *p11.Ctx
	slot   uint
	key    p11.ObjectHandle
	format byte       // formatGCM or formatKWP: what Wrap produces
	opens  keyFormats // what Unwrap accepts
	keyID  string     // "pkcs11:<token label>/<key label>"
	login  p11.SessionHandle
	pool   chan p11.SessionHandle // 0 = a session to reopen

	mu     sync.RWMutex // read-held by operations, write-held by Close
	closed bool
}

var _ hsm.Wrapper = (*HSM)(nil)

// Open loads the module, finds the token, logs in, finds the key and
// opens PoolSize sessions, then checks the key with a Wrap and Unwrap.
// Errors wrap ErrConfig, ErrModule, ErrTokenNotFound, ErrPIN,
// ErrKeyNotFound, ErrAmbiguous or ErrUnsupported.
func Open(cfg Config) (*HSM, error) { return open(cfg, 0) }

// open is Open; force, if not 0, is the only format to accept.
func open(cfg Config, force byte) (_ *HSM, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s, err := openSession(cfg, false)
	if err != nil {
		return nil, err
	}
	h := &HSM{mod: s.mod, ctx: s.mod.ctx, slot: s.slot, login: s.sh, pool: make(chan p11.SessionHandle, PoolSize),
		keyID: "pkcs11:" + s.token + "/" + cfg.KeyLabel}
	defer func() {
		if err != nil {
			h.shutdown()
		}
	}()
	keys, err := findKeys(h.ctx, h.login, cfg.KeyLabel)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: token %q: find key %q: %w", s.token, cfg.KeyLabel, err)
	}
	switch len(keys) {
	case 0:
		return nil, fmt.Errorf("%w: token %q has no AES key labelled %q (create it with kmsledger hsm init-pkcs11)", ErrKeyNotFound, s.token, cfg.KeyLabel)
	case 1:
		h.key = keys[0]
	default:
		return nil, fmt.Errorf("%w: token %q has %d AES keys labelled %q", ErrAmbiguous, s.token, len(keys), cfg.KeyLabel)
	}
	if h.format, h.opens, err = chooseFormat(h.ctx, h.slot, h.login, h.key, force); err != nil {
		return nil, fmt.Errorf("%s: %w", h.keyID, err)
	}
	for range PoolSize {
		sh, err := h.ctx.OpenSession(h.slot, p11.CKF_SERIAL_SESSION)
		if err != nil {
			return nil, fmt.Errorf("%s: open session: %w", h.keyID, err)
		}
		h.pool <- sh
	}
	if err := h.selfTest(); err != nil {
		return nil, fmt.Errorf("pkcs11: self-test: %w", err)
	}
	return h, nil
}

// selfTest wraps and unwraps 32 random bytes.
func (h *HSM) selfTest() error {
	pt, aad := make([]byte, 32), []byte("kmsledger/pkcs11/self-test")
	rand.Read(pt)
	defer clear(pt)
	ct, err := h.Wrap(context.Background(), pt, aad)
	if err != nil {
		return err
	}
	got, err := h.Unwrap(context.Background(), ct, aad)
	defer clear(got)
	if err != nil {
		return err
	}
	if string(got) != string(pt) {
		return fmt.Errorf("%s: unwrap returned other bytes than were wrapped", h.keyID)
	}
	return nil
}

// KeyID returns "pkcs11:<token label>/<key label>".
func (h *HSM) KeyID() string { return h.keyID }

// String returns the key ID.
func (h *HSM) String() string { return h.keyID }

// Close logs out (if no other HSM of this process uses the module),
// closes the sessions and finalises the module once its last user closes.
// It waits for running operations. Later calls return nil; Wrap and
// Unwrap then fail with ErrClosed.
func (h *HSM) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	return h.shutdown()
}

// shutdown closes the pooled and login sessions and releases the module.
// Every pooled session must be in the pool.
func (h *HSM) shutdown() error {
	var errs []error
	err := h.mod.release(func(last bool) {
		for len(h.pool) > 0 {
			if sh := <-h.pool; sh != 0 {
				errs = append(errs, h.ctx.CloseSession(sh))
			}
		}
		if last {
			// Logging out affects every session of the process on the
			// token, so only the module's last user does it.
			if err := h.ctx.Logout(h.login); err != nil && !errors.Is(err, p11.Error(p11.CKR_USER_NOT_LOGGED_IN)) {
				errs = append(errs, err)
			}
		}
		errs = append(errs, h.ctx.CloseSession(h.login))
	})
	if err := errors.Join(append(errs, err)...); err != nil {
		return fmt.Errorf("%s: close: %w", h.keyID, err)
	}
	return nil
}

// CreateKey generates an AES-256 key labelled cfg.KeyLabel on the token:
// a token object that is private, sensitive and never extractable, usable
// for encryption and decryption with AES-GCM (or, on a token without
// AES-GCM, for wrapping and unwrapping with AES-KWP). It returns an error
// wrapping ErrKeyExists if a key with the label exists, and the errors of
// Open otherwise.
func CreateKey(cfg Config) error { return createKey(cfg, 0) }

func createKey(cfg Config, force byte) (err error) {
	if err := cfg.validate(); err != nil {
		return err
	}
	s, err := openSession(cfg, true)
	if err != nil {
		return err
	}
	defer func() {
		rerr := s.mod.release(func(last bool) {
			if last {
				s.mod.ctx.Logout(s.sh) //nolint:errcheck // the session closes next
			}
			s.mod.ctx.CloseSession(s.sh) //nolint:errcheck // nothing left to do
		})
		err = errors.Join(err, rerr)
	}()
	ctx := s.mod.ctx
	keys, err := findKeys(ctx, s.sh, cfg.KeyLabel)
	if err != nil {
		return fmt.Errorf("pkcs11: token %q: find key %q: %w", s.token, cfg.KeyLabel, err)
	}
	if len(keys) > 0 {
		return fmt.Errorf("%w: token %q has an AES key labelled %q", ErrKeyExists, s.token, cfg.KeyLabel)
	}
	format := force
	if format == 0 {
		gcm, kwp := tokenMechanisms(ctx, s.slot)
		switch {
		case gcm:
			format = formatGCM
		case kwp:
			format = formatKWP
		default:
			return fmt.Errorf("%w: token %q supports neither CKM_AES_GCM nor CKM_AES_KEY_WRAP_PAD", ErrUnsupported, s.token)
		}
	}
	tmpl := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_VALUE_LEN, keyLen),
		p11.NewAttribute(p11.CKA_LABEL, cfg.KeyLabel),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_ENCRYPT, format == formatGCM),
		p11.NewAttribute(p11.CKA_DECRYPT, format == formatGCM),
		p11.NewAttribute(p11.CKA_WRAP, format == formatKWP),
		p11.NewAttribute(p11.CKA_UNWRAP, format == formatKWP),
		p11.NewAttribute(p11.CKA_SIGN, false),
		p11.NewAttribute(p11.CKA_VERIFY, false),
	}
	mech := []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}
	if _, err := ctx.GenerateKey(s.sh, mech, tmpl); err != nil {
		return fmt.Errorf("pkcs11: token %q: generate key %q: %w", s.token, cfg.KeyLabel, err)
	}
	return nil
}

// session is a logged-in session on the configured token.
type session struct {
	mod   *module
	slot  uint
	token string // the token's label
	sh    p11.SessionHandle
}

// openSession loads the module, finds the token and logs in on a new
// session, read-write if rw is set. On error nothing stays open.
func openSession(cfg Config, rw bool) (_ *session, err error) {
	mod, err := acquireModule(cfg.Module)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			mod.release(nil) //nolint:errcheck // reporting the first error
		}
	}()
	slot, info, err := findToken(mod.ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := checkTokenFlags(info); err != nil {
		return nil, err
	}
	flags := uint(p11.CKF_SERIAL_SESSION)
	if rw {
		flags |= p11.CKF_RW_SESSION
	}
	sh, err := mod.ctx.OpenSession(slot, flags)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: token %q: open session: %w", info.Label, err)
	}
	if err := mod.ctx.Login(sh, p11.CKU_USER, cfg.PIN); err != nil && !errors.Is(err, p11.Error(p11.CKR_USER_ALREADY_LOGGED_IN)) {
		mod.ctx.CloseSession(sh) //nolint:errcheck // reporting the login error
		return nil, loginError(info.Label, err)
	}
	return &session{mod: mod, slot: slot, token: info.Label, sh: sh}, nil
}

// loginError maps a C_Login failure to ErrPIN where the PIN is at fault.
func loginError(token string, err error) error {
	var code p11.Error
	if errors.As(err, &code) {
		switch code {
		case p11.CKR_PIN_INCORRECT:
			return fmt.Errorf("%w: token %q: the PIN is incorrect", ErrPIN, token)
		case p11.CKR_PIN_LOCKED:
			return fmt.Errorf("%w: token %q: the user PIN is locked (too many wrong attempts)", ErrPIN, token)
		case p11.CKR_PIN_EXPIRED:
			return fmt.Errorf("%w: token %q: the PIN has expired", ErrPIN, token)
		case p11.CKR_PIN_INVALID, p11.CKR_PIN_LEN_RANGE:
			return fmt.Errorf("%w: token %q: the PIN is malformed or has the wrong length", ErrPIN, token)
		case p11.CKR_USER_PIN_NOT_INITIALIZED:
			return fmt.Errorf("%w: token %q: no user PIN is set", ErrPIN, token)
		}
	}
	return fmt.Errorf("pkcs11: token %q: login: %w", token, err)
}
