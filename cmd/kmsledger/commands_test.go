package main

import (
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/cmd/clientcmd"
)

// TestCommandNamesUnique: no two commands of the binary share a name or
// alias, and the client commands do not define the server's.
func TestCommandNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	all := append(append(serverCommands(), clientCommands()...), migrateCommand())
	for _, c := range all {
		for _, n := range c.Names() {
			if seen[n] {
				t.Errorf("command name %q defined twice", n)
			}
			seen[n] = true
		}
	}
	for _, n := range []string{"identity", "server"} {
		for _, c := range clientcmd.Commands(nil) {
			if c.Name == n {
				t.Errorf("clientcmd.Commands defines %q", n)
			}
		}
	}
	// The offline audit subcommands join the client ones under audit.
	var audit *cli.Command
	for _, c := range all {
		if c.Name == "audit" {
			audit = c
		}
	}
	for _, sub := range []string{"diff", "events", "tail", "requests", "verify", "export", "export-key"} {
		if audit == nil || audit.Command(sub) == nil {
			t.Errorf("audit %s is missing", sub)
		}
	}
}
