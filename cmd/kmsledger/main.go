// Command kmsledger is the kmsledger server and its admin CLI.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:  "kmsledger",
		Usage: "an event-sourced key management service",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "soft-hsm", Usage: "print a new software HSM key and exit"},
		},
		Action:   rootAction,
		Commands: append(append(append(append(serverCommands(), clientCommands()...), migrateCommand()), backupCommands()...), benchCommands()...),
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "kmsledger:", err)
		os.Exit(1)
	}
}
