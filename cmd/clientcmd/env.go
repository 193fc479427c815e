package clientcmd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
)

// envProbeTimeout bounds the /version request to each server of `env`.
const envProbeTimeout = 10 * time.Second

// envCommand is `kmsledger env` (minkms env): the client settings in
// effect and whether each server answers. It never prints the API key.
func envCommand() *cli.Command {
	return &cli.Command{
		Name:   "env",
		Usage:  "show the client settings in effect (servers, enclave, CA file, identity of the API key) and whether each server answers /version",
		Action: envAction,
	}
}

type envServerJSON struct {
	Endpoint string `json:"endpoint"`
	Online   bool   `json:"online"`
	Version  string `json:"version,omitempty"`
	Commit   string `json:"commit,omitempty"`
	Error    string `json:"error,omitempty"`
}

type envJSON struct {
	Servers  []envServerJSON `json:"servers"`
	Enclave  string          `json:"enclave"`
	CAFile   string          `json:"ca_file,omitempty"`
	Insecure bool            `json:"insecure,omitempty"`
	Identity string          `json:"identity,omitempty"`
}

func envAction(c *cli.Context) error {
	if _, err := Args(c, 0, 0); err != nil {
		return err
	}
	key, err := apiKey(c)
	if err != nil {
		return err
	}
	out := envJSON{Enclave: c.String("enclave"), CAFile: c.String("ca"), Insecure: c.Bool("insecure")}
	if key != "" {
		if out.Identity, err = identityOfKey(key); err != nil {
			return fmt.Errorf("%w: API key: %w", ErrUsage, err)
		}
	}
	endpoints := serverList(c)
	if len(endpoints) == 0 {
		endpoints = []string{client.DefaultEndpoint}
	}
	down := 0
	for _, e := range endpoints {
		s := envServerJSON{Endpoint: e}
		// One client per server: the client would otherwise answer
		// with the first server that works.
		kc, err := newClientFor(c, []string{e}, "")
		if err == nil {
			ctx, cancel := context.WithTimeout(c.Context, envProbeTimeout)
			resp, verr := kc.Version(ctx)
			cancel()
			kc.Close()
			if err = verr; err == nil {
				s.Online, s.Version, s.Commit = true, resp.Version, resp.Commit
			}
		}
		if err != nil {
			s.Error = err.Error()
			down++
		}
		out.Servers = append(out.Servers, s)
	}
	if c.Bool("json") {
		if err := PrintJSON(c.App.Writer, out); err != nil {
			return err
		}
	} else if err := printEnv(c, out); err != nil {
		return err
	}
	if down > 0 {
		return fmt.Errorf("%d of %d servers did not answer /version", down, len(out.Servers))
	}
	return nil
}

func printEnv(c *cli.Context, e envJSON) error {
	names := make([]string, len(e.Servers))
	for i, s := range e.Servers {
		names[i] = s.Endpoint
	}
	identity, ca, enclave := e.Identity, e.CAFile, e.Enclave
	if identity == "" {
		identity = "(no API key: set MINIO_KMS_API_KEY or --api-key)"
	}
	if ca == "" {
		ca = "(system roots)"
	}
	if e.Insecure {
		ca += " (--insecure: server certificates are not verified)"
	}
	if enclave == "" {
		enclave = "(none)"
	}
	if err := printFields(c.App.Writer, [][2]string{
		{"Servers", strings.Join(names, ", ")}, {"Enclave", enclave}, {"CA file", ca}, {"Identity", identity},
	}); err != nil {
		return err
	}
	for _, s := range e.Servers {
		status := "online, version " + s.Version
		if s.Commit != "" {
			status += " (commit " + s.Commit + ")"
		}
		if !s.Online {
			status = "offline: " + s.Error
		}
		if _, err := fmt.Fprintf(c.App.Writer, "%s: %s\n", s.Endpoint, status); err != nil {
			return err
		}
	}
	return nil
}

// identityOfKey returns the h1: identity of an API key.
func identityOfKey(apiKey string) (string, error) {
	signer, err := wire.ParseAPIKey(apiKey)
	if err != nil {
		return "", err
	}
	return wire.Identity(signer.Public())
}
