package clientcmd

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
)

// keyType returns the canonical key type for s, matched ignoring case; ""
// lets the server choose.
func keyType(s string) (string, error) {
	for _, t := range []string{"", wire.KeyTypeAES256, wire.KeyTypeChaCha20} {
		if strings.EqualFold(s, t) {
			return t, nil
		}
	}
	return "", fmt.Errorf("%w: --type %q: want AES256 or ChaCha20", ErrUsage, s)
}

// decodeBase64 accepts standard and URL base64, with or without padding.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: not base64", ErrUsage)
}

// uint32Flag returns the value of a uint flag, checked to fit in 32 bits.
func uint32Flag(c *cli.Context, name string) (uint32, error) {
	v := c.Uint(name)
	if v > math.MaxUint32 {
		return 0, fmt.Errorf("%w: --%s %d is too large", ErrUsage, name, v)
	}
	return uint32(v), nil
}

func addKeyAction(c *cli.Context) error {
	return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		typ, err := keyType(c.String("type"))
		if err != nil {
			return err
		}
		enclave := c.String("enclave")
		if c.IsSet("import") {
			if c.Bool("version") {
				return fmt.Errorf("%w: --import and --version exclude each other", ErrUsage)
			}
			key, err := decodeBase64(c.String("import"))
			if err != nil {
				return fmt.Errorf("--import: %w", err)
			}
			defer clear(key)
			return kc.ImportKey(ctx, enclave, a[0], typ, key)
		}
		return kc.CreateKey(ctx, enclave, a[0], typ, c.Bool("version"))
	})
}

func rmKeyAction(c *cli.Context) error {
	return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		version, err := uint32Flag(c, "version")
		if err != nil {
			return err
		}
		if version > 0 && c.Bool("all") {
			return fmt.Errorf("%w: --version and --all exclude each other", ErrUsage)
		}
		if after := c.String("schedule"); after != "" {
			if version > 0 {
				return fmt.Errorf("%w: --schedule applies to the whole key, not to --version", ErrUsage)
			}
			return kc.ScheduleKeyDeletion(ctx, c.String("enclave"), a[0], after)
		}
		return kc.DeleteKey(ctx, c.String("enclave"), a[0], version, c.Bool("all"))
	})
}

func statKeyAction(c *cli.Context) error {
	return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		version, err := uint32Flag(c, "version")
		if err != nil {
			return err
		}
		k, err := kc.KeyInfo(ctx, c.String("enclave"), a[0])
		if err != nil {
			return err
		}
		if version != 0 && !slices.ContainsFunc(k.Versions, func(v wire.VersionInfo) bool { return v.Version == version }) {
			return client.ErrKeyNotFound
		}
		if c.Bool("json") {
			return PrintJSON(c.App.Writer, k)
		}
		return PrintKeyInfo(c.App.Writer, k, version)
	})
}

func lsKeyAction(c *cli.Context) error {
	return runClient(c, 0, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		keys, err := kc.ListKeyInfo(ctx, c.String("enclave"), first(a))
		if err != nil {
			return err
		}
		return PrintKeyList(c.App.Writer, c.Bool("json"), keys)
	})
}

// keygenAction prints a new data key: on purpose, since that is what the
// command is for; nothing else in the CLI prints key material.
func keygenAction(c *cli.Context) error {
	return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		length, err := uint32Flag(c, "length")
		if err != nil {
			return err
		}
		resp, err := kc.GenerateKey(ctx, c.String("enclave"), a[0], 0, []byte(c.String("context")), length)
		if err != nil {
			return err
		}
		defer clear(resp.Plaintext)
		out := struct {
			Version    uint32 `json:"version"`
			Plaintext  []byte `json:"plaintext"`
			Ciphertext []byte `json:"ciphertext"`
		}{resp.Version, resp.Plaintext, resp.Ciphertext}
		if c.Bool("json") {
			return PrintJSON(c.App.Writer, out)
		}
		return printFields(c.App.Writer, [][2]string{
			{"plaintext", base64.StdEncoding.EncodeToString(out.Plaintext)},
			{"ciphertext", base64.StdEncoding.EncodeToString(out.Ciphertext)},
		})
	})
}

func encryptAction(c *cli.Context) error {
	return runClient(c, 2, 2, func(ctx context.Context, kc *client.Client, a []string) error {
		resp, err := kc.Encrypt(ctx, c.String("enclave"), a[0], 0, []byte(a[1]), []byte(c.String("context")))
		if err != nil {
			return err
		}
		if c.Bool("json") {
			return PrintJSON(c.App.Writer, struct {
				Version    uint32 `json:"version"`
				Ciphertext []byte `json:"ciphertext"`
			}{resp.Version, resp.Ciphertext})
		}
		_, err = fmt.Fprintln(c.App.Writer, base64.StdEncoding.EncodeToString(resp.Ciphertext))
		return err
	})
}

func decryptAction(c *cli.Context) error {
	return runClient(c, 2, 2, func(ctx context.Context, kc *client.Client, a []string) error {
		ciphertext, err := decodeBase64(a[1])
		if err != nil {
			return fmt.Errorf("ciphertext: %w", err)
		}
		resp, err := kc.Decrypt(ctx, c.String("enclave"), a[0], 0, ciphertext, []byte(c.String("context")))
		if err != nil {
			return err
		}
		defer clear(resp.Plaintext)
		if c.Bool("json") {
			return PrintJSON(c.App.Writer, struct {
				Plaintext []byte `json:"plaintext"`
			}{resp.Plaintext})
		}
		if c.Bool("raw") {
			_, err = c.App.Writer.Write(resp.Plaintext)
			return err
		}
		_, err = fmt.Fprintln(c.App.Writer, base64.StdEncoding.EncodeToString(resp.Plaintext))
		return err
	})
}
