package main

// The helpers of package clientcmd that the binary's own commands
// (server, the offline audit commands, migrate) share, under short names.

import (
	"crypto/x509"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/cmd/clientcmd"
)

// errUsage is wrapped by errors about command-line arguments: the one of
// the client commands, so that every command reports usage alike.
var errUsage = clientcmd.ErrUsage

// args returns the positional arguments of c, between min and max of
// them, applying flags given after them (clientcmd.Args).
func args(c *cli.Context, min, max int) ([]string, error) { return clientcmd.Args(c, min, max) }

// first returns a[0], or "" if a is empty.
func first(a []string) string {
	if len(a) == 0 {
		return ""
	}
	return a[0]
}

// connFlags returns new instances of the flags that say how to reach a
// server (clientcmd.ConnFlags).
func connFlags() []cli.Flag { return clientcmd.ConnFlags() }

// newClient builds a client from the connection flags (clientcmd.NewClient).
func newClient(c *cli.Context) (*client.Client, error) { return clientcmd.NewClient(c) }

// clientCommands returns the client commands of package clientcmd, with
// the offline audit subcommands (audit.go) under their audit command.
func clientCommands() []*cli.Command { return clientcmd.Commands(auditLocalSubcommands) }

// pointUsage, parsePoint, apiKey, serverList and loadCAs are clientcmd's.
const pointUsage = clientcmd.PointUsage

func parsePoint(flag, s string, now time.Time) (client.Point, error) {
	return clientcmd.ParsePoint(flag, s, now)
}
func apiKey(c *cli.Context) (string, error)       { return clientcmd.APIKey(c) }
func serverList(c *cli.Context) []string          { return clientcmd.ServerList(c) }
func loadCAs(file string) (*x509.CertPool, error) { return clientcmd.LoadCAs(file) }
