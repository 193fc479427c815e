package clientcmd

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
)

// lifecycleCommands are the key lifecycle commands of the admin API.
func lifecycleCommands() []*cli.Command {
	versionFlag := func() cli.Flag {
		return &cli.UintFlag{Name: "version", Usage: "only this version (default: the whole key)"}
	}
	return []*cli.Command{
		{Name: "disable-key", Usage: "disable a key or one version: its data keys stop decrypting until enabled", ArgsUsage: "NAME",
			Flags: []cli.Flag{versionFlag()}, Action: keyStateAction(false)},
		{Name: "enable-key", Usage: "enable a disabled key or version", ArgsUsage: "NAME",
			Flags: []cli.Flag{versionFlag()}, Action: keyStateAction(true)},
		{Name: "restore-key", Usage: "cancel a scheduled deletion", ArgsUsage: "NAME", Action: restoreKeyAction},
		{Name: "release-key", Usage: "free the name of a destroyed key so a new key may take it", ArgsUsage: "NAME", Action: releaseKeyAction},
		{Name: "rewrap", Usage: "re-encrypt a ciphertext under the key's latest version (the plaintext stays on the server)",
			ArgsUsage: "KEY CIPHERTEXT", Action: rewrapAction,
			Flags: []cli.Flag{&cli.StringFlag{Name: "context", Usage: "associated data given at encryption"}}},
	}
}

func keyStateAction(enable bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error {
			version, err := uint32Flag(c, "version")
			if err != nil {
				return err
			}
			if enable {
				return kc.EnableKey(ctx, c.String("enclave"), a[0], version)
			}
			return kc.DisableKey(ctx, c.String("enclave"), a[0], version)
		})
	}
}

func restoreKeyAction(c *cli.Context) error {
	return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		return kc.RestoreKey(ctx, c.String("enclave"), a[0])
	})
}

func releaseKeyAction(c *cli.Context) error {
	return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		return kc.ReleaseKeyName(ctx, c.String("enclave"), a[0])
	})
}

func rewrapAction(c *cli.Context) error {
	return runClient(c, 2, 2, func(ctx context.Context, kc *client.Client, a []string) error {
		ct, err := decodeBase64(a[1])
		if err != nil {
			return fmt.Errorf("ciphertext: %w", err)
		}
		r, err := kc.Rewrap(ctx, c.String("enclave"), a[0], ct, []byte(c.String("context")))
		if err != nil {
			return err
		}
		if c.Bool("json") {
			return PrintJSON(c.App.Writer, r)
		}
		_, err = fmt.Fprintf(c.App.Writer, "version:    %d\nciphertext: %s\n", r.Version, base64.StdEncoding.EncodeToString(r.Ciphertext))
		return err
	})
}
