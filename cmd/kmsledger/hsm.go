package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm/pkcs11"
	"github.com/kmsledger/kmsledger/hsm/remotekms"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// openedHSMs are the configured HSMs that could be opened.
type openedHSMs struct {
	list   []commands.NamedHSM
	soft   *softkey.Key // the first software HSM key, for the root API key derivation
	closer []func() error
}

func (o *openedHSMs) Close() {
	for _, c := range o.closer {
		c()
	}
}

// openHSMs opens every configured HSM, in order. The backend is chosen
// here, by a switch: there is no registry. An HSM that fails to open is
// reported (by name, with the reason) and left out; the caller decides
// whether the ones that opened are enough.
func openHSMs(ctx context.Context, cfgs []config.HSM, log *slog.Logger) (*openedHSMs, []error) {
	o := &openedHSMs{}
	var errs []error
	for _, c := range cfgs {
		h, err := openHSM(ctx, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("HSM %q: %w", c.Name, err))
			log.Warn("HSM not available", "hsm", c.Name, "err", err)
			continue
		}
		o.list = append(o.list, h)
		if k, ok := h.W.(*softkey.Key); ok && o.soft == nil {
			o.soft = k
		}
		if cl, ok := h.W.(interface{ Close() error }); ok {
			o.closer = append(o.closer, cl.Close)
		}
	}
	return o, errs
}

func openHSM(ctx context.Context, c config.HSM) (commands.NamedHSM, error) {
	switch {
	case c.Soft != nil:
		k, err := softkey.Parse(c.Soft.Key)
		if err != nil {
			return commands.NamedHSM{}, err
		}
		return commands.NamedHSM{Name: c.Name, Kind: "soft", W: k}, nil
	case c.PKCS11 != nil:
		pin := c.PKCS11.PIN
		if c.PKCS11.PINFile != "" {
			b, err := os.ReadFile(c.PKCS11.PINFile)
			if err != nil {
				return commands.NamedHSM{}, fmt.Errorf("read pin_file: %w", err)
			}
			pin = strings.TrimRight(string(b), "\r\n")
		}
		h, err := pkcs11.Open(pkcs11.Config{Module: c.PKCS11.Module, TokenLabel: c.PKCS11.Token, Slot: c.PKCS11.Slot, PIN: pin, KeyLabel: c.PKCS11.Key})
		if err != nil {
			return commands.NamedHSM{}, err
		}
		return commands.NamedHSM{Name: c.Name, Kind: "pkcs11", W: h}, nil
	case c.MinKMS != nil:
		cfg := remotekms.Config{Endpoints: c.MinKMS.Server, Enclave: c.MinKMS.Enclave, Key: c.MinKMS.Key, APIKey: c.MinKMS.AuthKey, Timeout: 10 * time.Second}
		if c.MinKMS.CA != "" {
			pem, err := os.ReadFile(c.MinKMS.CA)
			if err != nil {
				return commands.NamedHSM{}, fmt.Errorf("read ca: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return commands.NamedHSM{}, fmt.Errorf("ca %s: no PEM certificate", c.MinKMS.CA)
			}
		}
		h, err := remotekms.Open(ctx, cfg)
		if err != nil {
			return commands.NamedHSM{}, err
		}
		return commands.NamedHSM{Name: c.Name, Kind: "kmsledger", W: h}, nil
	}
	return commands.NamedHSM{}, errors.New("no backend configured")
}

// loadServerConfig reads --config (if any) and puts the software HSM key
// of KMSLEDGER_HSM_KEY/--hsm-key first, as the server does.
func loadServerConfig(file, hsmKey string) (*config.Config, error) {
	conf := &config.Config{Version: "v1"}
	if file != "" {
		var err error
		if conf, err = config.ReadFile(file); err != nil {
			return nil, err
		}
	}
	return conf, conf.PrependSoftKey(hsmKey)
}

// identityFromConfig returns the root API key and identity the server
// uses with this configuration. A first software HSM key derives them;
// that is the root of a new ledger. An initialised ledger says which root
// it has (it may have been initialised by another HSM, whose random root
// key is sealed in it), so the (stopped) node's ledger is read, read-only,
// whenever it exists; while a server holds it, a derived root is
// returned unchecked and any other is refused.
func identityFromConfig(ctx context.Context, conf *config.Config, dir string) (key, id string, err error) {
	if len(conf.HSM) == 0 {
		return "", "", errors.New("the configuration has no HSM")
	}
	if dir == "" {
		dir = conf.Dir
	}
	var derivedKey, derivedID string
	if s := conf.HSM[0].Soft; s != nil {
		k, err := softkey.Parse(s.Key)
		if err != nil {
			return "", "", err
		}
		if derivedKey, derivedID, err = rootAPIKey(k); err != nil {
			return "", "", err
		}
		if _, err := os.Stat(filepath.Join(dir, "jetstream")); dir == "" || err != nil {
			return derivedKey, derivedID, nil // no ledger yet
		}
	}
	if dir == "" {
		return "", "", errors.New("no data dir: give DIR or dir: in the config")
	}
	log := slog.New(slog.DiscardHandler)
	hsms, errs := openHSMs(ctx, conf.HSM, log)
	defer hsms.Close()
	if len(hsms.list) == 0 {
		return "", "", errors.Join(errs...)
	}
	store, err := ledger.Open(ctx, ledger.Config{Dir: dir, Logger: log, ReadOnly: true})
	if errors.Is(err, ledger.ErrLocked) && derivedKey != "" {
		return derivedKey, derivedID, nil
	}
	if err != nil {
		return "", "", fmt.Errorf("open %s (is the server running? stop it first): %w", dir, err)
	}
	defer store.Close()
	proj, err := projections.Open(ctx, store, nil, log)
	if err != nil {
		return "", "", err
	}
	defer proj.Close()
	var initialized bool
	proj.View(func(s *projections.State) { initialized = s.Initialized })
	switch {
	case !initialized && derivedKey != "":
		return derivedKey, derivedID, nil
	case !initialized:
		return "", "", fmt.Errorf("%s holds no initialised ledger", dir)
	}
	rek, u, err := commands.Unseal(ctx, store, proj, hsms.list, commands.InitParams{})
	if err != nil {
		return "", "", err
	}
	if key, err = commands.RootKey(rek, u.Init); err != nil || key != "" {
		return key, u.Init.RootIdentity, err
	}
	if derivedID == u.Init.RootIdentity {
		return derivedKey, derivedID, nil
	}
	return "", "", errors.New("the root API key of this ledger is derived from a software HSM key that is not the first HSM of this configuration")
}

func hsmInitCommand() *cli.Command {
	return &cli.Command{
		Name:  "hsm",
		Usage: "manage the root of trust offline",
		Subcommands: []*cli.Command{{
			Name:  "init-pkcs11",
			Usage: "create the AES-256 key of each pkcs11 HSM of the configuration on its token (if missing)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "config", Required: true, EnvVars: []string{"KMSLEDGER_CONFIG"}, Usage: "configuration file"},
				&cli.StringFlag{Name: "name", Usage: "only the HSM of this name"},
			},
			Action: func(c *cli.Context) error {
				conf, err := config.ReadFile(c.String("config"))
				if err != nil {
					return err
				}
				n := 0
				for _, h := range conf.HSM {
					if h.PKCS11 == nil || (c.String("name") != "" && h.Name != c.String("name")) {
						continue
					}
					n++
					pin := h.PKCS11.PIN
					if h.PKCS11.PINFile != "" {
						b, err := os.ReadFile(h.PKCS11.PINFile)
						if err != nil {
							return err
						}
						pin = strings.TrimRight(string(b), "\r\n")
					}
					err := pkcs11.CreateKey(pkcs11.Config{Module: h.PKCS11.Module, TokenLabel: h.PKCS11.Token, Slot: h.PKCS11.Slot, PIN: pin, KeyLabel: h.PKCS11.Key})
					switch {
					case errors.Is(err, pkcs11.ErrKeyExists):
						fmt.Fprintf(c.App.Writer, "%s: key %q exists on token %q\n", h.Name, h.PKCS11.Key, h.PKCS11.Token)
					case err != nil:
						return fmt.Errorf("HSM %q: %w", h.Name, err)
					default:
						fmt.Fprintf(c.App.Writer, "%s: created key %q on token %q\n", h.Name, h.PKCS11.Key, h.PKCS11.Token)
					}
				}
				if n == 0 {
					return errors.New("no pkcs11 HSM in the configuration")
				}
				return nil
			},
		}},
	}
}
