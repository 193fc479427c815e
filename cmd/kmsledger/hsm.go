package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/hsm/pkcs11"
)

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
					pin, err := node.PIN(h.PKCS11)
					if err != nil {
						return err
					}
					err = pkcs11.CreateKey(pkcs11.Config{Module: h.PKCS11.Module, TokenLabel: h.PKCS11.Token, Slot: h.PKCS11.Slot, PIN: pin, KeyLabel: h.PKCS11.Key})
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
