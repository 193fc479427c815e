package main

import (
	"github.com/urfave/cli/v2"

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
