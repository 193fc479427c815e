package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/ledger"
)

// clusterServerFlags are the server's cluster flags; they override the
// configuration file's cluster: and nats: sections.
func clusterServerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "node", EnvVars: []string{"KMSLEDGER_NODE"}, Usage: "this node's unique name in its cluster (default: the host name)"},
		&cli.StringFlag{Name: "cluster-listen", EnvVars: []string{"KMSLEDGER_CLUSTER_LISTEN"}, Usage: "route listener `HOST:PORT` of this node; with --routes, makes the server a cluster node"},
		&cli.StringFlag{Name: "cluster-advertise", EnvVars: []string{"KMSLEDGER_CLUSTER_ADVERTISE"}, Usage: "route address `HOST:PORT` the other nodes dial, if not --cluster-listen"},
		&cli.StringFlag{Name: "routes", EnvVars: []string{"KMSLEDGER_ROUTES"}, Usage: "route URLs of the cluster's nodes, `nats://host:port,...` (this node's own may be listed)"},
		&cli.StringFlag{Name: "cluster-key", EnvVars: []string{"KMSLEDGER_CLUSTER_KEY"}, Usage: "the cluster key `FILE` made by `kmsledger cluster init` (sealed under the HSMs)"},
		&cli.StringFlag{Name: "cluster-name", EnvVars: []string{"KMSLEDGER_CLUSTER_NAME"}, Usage: "NATS cluster name, the same on every node (default kmsledger)"},
		&cli.IntFlag{Name: "replicas", EnvVars: []string{"KMSLEDGER_REPLICAS"}, Usage: "replicas of every stream: 1, 3 or 5 (default 3 with three or more nodes, 3 on --nats-url)"},
		&cli.DurationFlag{Name: "staleness", EnvVars: []string{"KMSLEDGER_STALENESS"}, Usage: "how long a node cut off from its cluster keeps serving crypto (default 30s)"},
		&cli.StringFlag{Name: "nats-url", EnvVars: []string{"KMSLEDGER_NATS_URL"}, Usage: "use an existing NATS cluster, `nats://host:port,...`, instead of the embedded server"},
		&cli.StringFlag{Name: "nats-creds", EnvVars: []string{"KMSLEDGER_NATS_CREDS"}, Usage: "NATS credentials `FILE` (.creds) for --nats-url"},
		&cli.StringFlag{Name: "nats-user", EnvVars: []string{"KMSLEDGER_NATS_USER"}, Usage: "NATS user for --nats-url (password: KMSLEDGER_NATS_PASSWORD)"},
		&cli.StringFlag{Name: "nats-ca", EnvVars: []string{"KMSLEDGER_NATS_CA"}, Usage: "PEM `FILE` of the CAs of the NATS servers' certificates"},
		&cli.StringFlag{Name: "nats-cert", EnvVars: []string{"KMSLEDGER_NATS_CERT"}, Usage: "client certificate `FILE` (PEM) for NATS"},
		&cli.StringFlag{Name: "nats-key", EnvVars: []string{"KMSLEDGER_NATS_KEY"}, Usage: "client key `FILE` (PEM) for NATS"},
	}
}

// splitList splits a comma-separated flag value.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// clusterOf completes cfg with the cluster or external NATS settings of
// the flags and the configuration file.
func clusterOf(c *cli.Context, conf *config.Config, cfg *node.Config) error {
	cl, nc := conf.Cluster, conf.NATS
	override(c, &cl.Node, "node")
	override(c, &cl.Listen, "cluster-listen")
	override(c, &cl.Advertise, "cluster-advertise")
	override(c, &cl.KeyFile, "cluster-key")
	override(c, &cl.Name, "cluster-name")
	if c.IsSet("routes") {
		cl.Routes = splitList(c.String("routes"))
	}
	if c.IsSet("replicas") {
		cl.Replicas, nc.Replicas = c.Int("replicas"), c.Int("replicas")
	}
	if c.IsSet("staleness") {
		cl.Staleness = c.Duration("staleness")
	}
	if c.IsSet("nats-url") {
		nc.URLs = splitList(c.String("nats-url"))
	}
	override(c, &nc.Creds, "nats-creds")
	override(c, &nc.User, "nats-user")
	override(c, &nc.CA, "nats-ca")
	override(c, &nc.Cert, "nats-cert")
	override(c, &nc.Key, "nats-key")
	if p, ok := os.LookupEnv("KMSLEDGER_NATS_PASSWORD"); ok {
		nc.Password = p
	}
	conf.Cluster, conf.NATS = cl, nc
	if err := conf.Validate(); err != nil {
		return err
	}
	cfg.Staleness = cl.Staleness
	switch {
	case len(nc.URLs) > 0:
		cfg.External = &ledger.ExternalConfig{URLs: nc.URLs, CredsFile: nc.Creds, User: nc.User, Password: nc.Password,
			CAFile: nc.CA, CertFile: nc.Cert, KeyFile: nc.Key, Replicas: nc.Replicas}
	case cl.Enabled():
		if cl.Node == "" {
			h, err := os.Hostname()
			if err != nil {
				return fmt.Errorf("--node: %w", err)
			}
			cl.Node = strings.Split(h, ".")[0]
		}
		if cl.KeyFile == "" {
			return errors.New("a cluster node needs --cluster-key FILE (make it once with `kmsledger cluster init` and copy it to every node)")
		}
		cfg.Cluster = &node.ClusterConfig{Name: cl.Name, Node: cl.Node, Listen: cl.Listen, Advertise: cl.Advertise,
			Routes: cl.Routes, KeyFile: cl.KeyFile, Replicas: cl.Replicas}
	case c.IsSet("node") || c.IsSet("cluster-key"):
		return errors.New("--node and --cluster-key need --cluster-listen and --routes")
	}
	return nil
}

// clusterCommand is `kmsledger cluster`.
func clusterCommand() *cli.Command {
	return &cli.Command{
		Name:  "cluster",
		Usage: "set up a cluster of kmsledger nodes",
		Subcommands: []*cli.Command{{
			Name:  "init",
			Usage: "make the cluster key: a random secret sealed under the configured HSMs, for --cluster-key on every node",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "config", EnvVars: []string{"KMSLEDGER_CONFIG"}, Usage: "configuration file with the HSMs (the same on every node)"},
				&cli.StringFlag{Name: "hsm-key", EnvVars: hsmKeyEnvVars(), Usage: "software HSM key (prefer the environment variable)"},
				&cli.StringFlag{Name: "out", Value: "cluster.key", Usage: "file to write (not overwritten)"},
			},
			Action: clusterInitAction,
		}},
	}
}

func clusterInitAction(c *cli.Context) error {
	conf, err := loadServerConfig(c.String("config"), hsmKeyOnly(c))
	if err != nil {
		return err
	}
	if len(conf.HSM) == 0 {
		return errors.New("no HSM: configure the cluster's HSMs (--config, KMSLEDGER_HSM_KEY) as for the server")
	}
	hsms, errs := node.OpenHSMs(c.Context, conf.HSM, slog.New(slog.DiscardHandler))
	defer hsms.Close()
	if len(errs) > 0 {
		return fmt.Errorf("every configured HSM must open to seal the cluster key: %w", errors.Join(errs...))
	}
	b, err := node.NewClusterKey(c.Context, hsms.List)
	if err != nil {
		return err
	}
	out := c.String("out")
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("cluster key written to %s (sealed under %d HSM(s)); copy it to every node and start each with --cluster-key %s\n", out, len(hsms.List), out)
	return nil
}
