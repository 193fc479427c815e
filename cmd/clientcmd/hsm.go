package clientcmd

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
)

// hsmCommands manage the root of trust of a running node (root only).
func hsmCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "add-hsm", Usage: "seal the root encryption key under an HSM configured on the node, so it alone can start it", ArgsUsage: "NAME",
			Action: func(c *cli.Context) error {
				return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error { return kc.AddHSM(ctx, a[0]) })
			}},
		{Name: "rm-hsm", Usage: "stop using the sealing under an HSM (the last one is refused)", ArgsUsage: "NAME",
			Action: func(c *cli.Context) error {
				return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error { return kc.RemoveHSM(ctx, a[0]) })
			}},
		{Name: "ls-hsm", Usage: "list the HSMs the root encryption key is sealed under, and those configured, with health",
			Action: func(c *cli.Context) error {
				return runClient(c, 0, 0, func(ctx context.Context, kc *client.Client, _ []string) error {
					hs, err := kc.ListHSMs(ctx)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return PrintJSON(c.App.Writer, hs)
					}
					return printList(c.App.Writer, false, hs, func(h wire.HSMInfo) string {
						sealed := "not sealed"
						if h.Sealed {
							sealed = "sealed"
						}
						status := h.Status
						if !h.Configured {
							status = "not configured on this node"
						}
						return fmt.Sprintf("%-12s %-10s %-8s %-40s %s", h.Name, h.Kind, sealed, h.KeyID, status)
					})
				})
			}},
	}
}
