package transitinterop

import (
	"errors"
	"time"

	vault "github.com/hashicorp/vault/api"
	bao "github.com/openbao/openbao/api/v2"
)

// client is what the tests need of a Transit client library: the same
// calls through either SDK, results as plain maps.
type client interface {
	name() string
	setToken(tok string)
	write(path string, data map[string]any) (*result, error)
	read(path string) (*result, error) // nil, nil on a 404 (the SDKs' rule)
	list(path string) (*result, error)
	delete(path string) error
	health() (initialized, sealed bool, err error)
	lookupSelf() (*result, error)
	renewSelf(increment int) (*result, error)
	revokeSelf() error
	approleLogin(roleID, secretID string) (*result, error)
}

// result is a response: data, auth and warnings.
type result struct {
	Data     map[string]any
	Auth     map[string]any
	Warnings []string
}

// status is the HTTP status of an SDK error (0 if it is none of theirs).
func status(err error) int {
	var ve *vault.ResponseError
	if errors.As(err, &ve) {
		return ve.StatusCode
	}
	var be *bao.ResponseError
	if errors.As(err, &be) {
		return be.StatusCode
	}
	return 0
}

// errorsOf is the server's error messages in an SDK error.
func errorsOf(err error) []string {
	var ve *vault.ResponseError
	if errors.As(err, &ve) {
		return ve.Errors
	}
	var be *bao.ResponseError
	if errors.As(err, &be) {
		return be.Errors
	}
	return nil
}

func newVault(addr, caFile, token string) (client, error) {
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0 // a 5xx must show, not be retried away
	cfg.Timeout = 30 * time.Second
	if err := cfg.ConfigureTLS(&vault.TLSConfig{CACert: caFile}); err != nil {
		return nil, err
	}
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(token)
	return &vaultClient{c}, nil
}

func newBao(addr, caFile, token string) (client, error) {
	cfg := bao.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	cfg.Timeout = 30 * time.Second
	if err := cfg.ConfigureTLS(&bao.TLSConfig{CACert: caFile}); err != nil {
		return nil, err
	}
	c, err := bao.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(token)
	return &baoClient{c}, nil
}

type vaultClient struct{ c *vault.Client }

func vaultResult(s *vault.Secret, err error) (*result, error) {
	if err != nil || s == nil {
		return nil, err
	}
	r := &result{Data: s.Data, Warnings: s.Warnings}
	if s.Auth != nil {
		r.Auth = map[string]any{"client_token": s.Auth.ClientToken, "accessor": s.Auth.Accessor,
			"lease_duration": s.Auth.LeaseDuration, "renewable": s.Auth.Renewable}
	}
	return r, nil
}

func (v *vaultClient) name() string        { return "vault/api" }
func (v *vaultClient) setToken(tok string) { v.c.SetToken(tok) }
func (v *vaultClient) write(p string, d map[string]any) (*result, error) {
	return vaultResult(v.c.Logical().Write(p, d))
}
func (v *vaultClient) read(p string) (*result, error) { return vaultResult(v.c.Logical().Read(p)) }
func (v *vaultClient) list(p string) (*result, error) { return vaultResult(v.c.Logical().List(p)) }
func (v *vaultClient) delete(p string) error {
	_, err := v.c.Logical().Delete(p)
	return err
}
func (v *vaultClient) health() (bool, bool, error) {
	h, err := v.c.Sys().Health()
	if err != nil {
		return false, false, err
	}
	return h.Initialized, h.Sealed, nil
}
func (v *vaultClient) lookupSelf() (*result, error) {
	return vaultResult(v.c.Auth().Token().LookupSelf())
}
func (v *vaultClient) renewSelf(inc int) (*result, error) {
	return vaultResult(v.c.Auth().Token().RenewSelf(inc))
}
func (v *vaultClient) revokeSelf() error { return v.c.Auth().Token().RevokeSelf("") }
func (v *vaultClient) approleLogin(roleID, secretID string) (*result, error) {
	tok := v.c.Token()
	v.c.ClearToken()
	defer v.c.SetToken(tok)
	return vaultResult(v.c.Logical().Write("auth/approle/login", map[string]any{"role_id": roleID, "secret_id": secretID}))
}

type baoClient struct{ c *bao.Client }

func baoResult(s *bao.Secret, err error) (*result, error) {
	if err != nil || s == nil {
		return nil, err
	}
	r := &result{Data: s.Data, Warnings: s.Warnings}
	if s.Auth != nil {
		r.Auth = map[string]any{"client_token": s.Auth.ClientToken, "accessor": s.Auth.Accessor,
			"lease_duration": s.Auth.LeaseDuration, "renewable": s.Auth.Renewable}
	}
	return r, nil
}

func (b *baoClient) name() string        { return "openbao/api" }
func (b *baoClient) setToken(tok string) { b.c.SetToken(tok) }
func (b *baoClient) write(p string, d map[string]any) (*result, error) {
	return baoResult(b.c.Logical().Write(p, d))
}
func (b *baoClient) read(p string) (*result, error) { return baoResult(b.c.Logical().Read(p)) }
func (b *baoClient) list(p string) (*result, error) { return baoResult(b.c.Logical().List(p)) }
func (b *baoClient) delete(p string) error {
	_, err := b.c.Logical().Delete(p)
	return err
}
func (b *baoClient) health() (bool, bool, error) {
	h, err := b.c.Sys().Health()
	if err != nil {
		return false, false, err
	}
	return h.Initialized, h.Sealed, nil
}
func (b *baoClient) lookupSelf() (*result, error) { return baoResult(b.c.Auth().Token().LookupSelf()) }
func (b *baoClient) renewSelf(inc int) (*result, error) {
	return baoResult(b.c.Auth().Token().RenewSelf(inc))
}
func (b *baoClient) revokeSelf() error { return b.c.Auth().Token().RevokeSelf("") }
func (b *baoClient) approleLogin(roleID, secretID string) (*result, error) {
	tok := b.c.Token()
	b.c.ClearToken()
	defer b.c.SetToken(tok)
	return baoResult(b.c.Logical().Write("auth/approle/login", map[string]any{"role_id": roleID, "secret_id": secretID}))
}
