package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
)

// Dev-mode defaults.
const (
	devEnclave = "minio"
	devSSEKey  = "minio-default-key"
)

func serverCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:      "server",
			Usage:     "run the key manager",
			ArgsUsage: "[DIR]",
			Flags: append([]cli.Flag{
				&cli.BoolFlag{Name: "dev", Usage: "throw-away data dir, self-signed certificate, random HSM key"},
				&cli.StringFlag{Name: "config", EnvVars: []string{"KMSLEDGER_CONFIG"}, Usage: "configuration file (YAML, version: v1); flags and KMSLEDGER_* variables override it"},
				&cli.StringFlag{Name: "address", Value: "127.0.0.1:7373", EnvVars: []string{"KMSLEDGER_ADDRESS"}, Usage: "listen address"},
				&cli.StringFlag{Name: "hsm-key", EnvVars: hsmKeyEnvVars(), Usage: "software HSM key hsm:aes256:... (prefer the environment variable: flags show in ps)"},
				&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"KMSLEDGER_TLS_CERT"}, Usage: "server certificate (PEM); default: self-signed, kept in DIR/tls"},
				&cli.StringFlag{Name: "tls-key", EnvVars: []string{"KMSLEDGER_TLS_KEY"}, Usage: "server private key (PEM)"},
				&cli.StringFlag{Name: "kes-enclave", EnvVars: []string{"KMSLEDGER_KES_ENCLAVE"}, Usage: "also serve the KES API; KES clients act in enclave `NAME`"},
				transitEnclaveFlag, // transit.go
				&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"KMSLEDGER_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
				&cli.StringFlag{Name: "log-format", Value: "text", EnvVars: []string{"KMSLEDGER_LOG_FORMAT"}, Usage: "text or json"},
				&cli.DurationFlag{Name: "hsm-check-interval", Value: 30 * time.Second, EnvVars: []string{"KMSLEDGER_HSM_CHECK_INTERVAL"}, Usage: "how often the configured HSMs are probed (an outage is logged and shown by /v1/health/ready)"},
				&cli.IntFlag{Name: "max-conns", Value: api.DefaultMaxConns, EnvVars: []string{"KMSLEDGER_MAX_CONNS"}, Usage: "open client connections in all; more are closed when accepted (-1 = no limit)"},
				&cli.IntFlag{Name: "key-cache", EnvVars: []string{"KMSLEDGER_KEY_CACHE"}, Usage: "unsealed key versions kept in memory (`N`; default 1,000,000; others are unsealed again when used)"},
				&cli.StringFlag{Name: "memory-limit", EnvVars: []string{"KMSLEDGER_MEMORY_LIMIT"}, Usage: "the Go runtime's soft memory limit (`SIZE`: e.g. 1GiB, or off; default: GOMEMLIMIT, else 90% of the cgroup's limit, else none)"},
				&cli.IntFlag{Name: "max-conns-per-ip", Value: api.DefaultMaxConnsPerIP, EnvVars: []string{"KMSLEDGER_MAX_CONNS_PER_IP"}, Usage: "open client connections from one IP address (-1 = no limit; raise it behind a load balancer)"},
			}, append(auditServerFlags(), clusterServerFlags()...)...), // audit_server.go: --audit*, --checkpoint-*; cluster.go
			Action: serverAction,
		},
		{
			Name:      "identity",
			Usage:     "show the h1: identity of an API key, or make a new API key",
			ArgsUsage: "[k1:API-KEY]",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "hsm-key", EnvVars: hsmKeyEnvVars(), Usage: "print the root API key derived from this software HSM key"},
				&cli.StringFlag{Name: "config", EnvVars: []string{"KMSLEDGER_CONFIG"}, Usage: "print the root API key the server uses with this configuration"},
			},
			Action: identityAction,
		},
		hsmInitCommand(),
		clusterCommand(),
	}
}

func rootAction(c *cli.Context) error {
	if !c.Bool("soft-hsm") {
		return cli.ShowAppHelp(c)
	}
	k, err := softkey.Generate(rand.Reader)
	if err != nil {
		return err
	}
	fmt.Println(k)
	return nil
}

func identityAction(c *cli.Context) error {
	switch {
	case c.String("config") != "":
		conf, err := loadServerConfig(c.String("config"), hsmKeyOnly(c))
		if err != nil {
			return err
		}
		dir := c.Args().First()
		if dir == "" {
			dir = conf.Dir
		}
		key, id, err := node.RootOf(c.Context, conf.HSM, dir)
		if err != nil {
			return err
		}
		fmt.Printf("Root API key: %s\nIdentity:     %s\n", key, id)
	case hsmKeyOnly(c) != "":
		hk, err := softkey.Parse(hsmKeyOnly(c))
		if err != nil {
			return err
		}
		key, id, err := node.DeriveRootAPIKey(hk)
		if err != nil {
			return err
		}
		fmt.Printf("Root API key: %s\nIdentity:     %s\n", key, id)
	case c.Args().Len() == 1:
		signer, err := wire.ParseAPIKey(c.Args().First())
		if err != nil {
			return err
		}
		id, err := wire.Identity(signer.Public())
		if err != nil {
			return err
		}
		fmt.Println(id)
	default:
		key, err := wire.GenerateAPIKey(rand.Reader)
		if err != nil {
			return err
		}
		signer, err := wire.ParseAPIKey(key)
		if err != nil {
			return err
		}
		id, err := wire.Identity(signer.Public())
		if err != nil {
			return err
		}
		fmt.Printf("API key:  %s\nIdentity: %s\n", key, id)
	}
	return nil
}

// override sets *dst from the flag when the flag was given, or when the
// configuration file left it empty (then the flag's default applies).
func override(c *cli.Context, dst *string, flag string) {
	if c.IsSet(flag) || *dst == "" {
		*dst = c.String(flag)
	}
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	if format != "" && format != "text" && format != "json" {
		return nil, fmt.Errorf("invalid log format %q: want text or json", format)
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
}

func serverAction(c *cli.Context) error {
	// Flags may also follow DIR (urfave/cli stops at the first argument).
	pos, err := args(c, 0, 1)
	if err != nil {
		return err
	}
	conf, err := loadServerConfig(c.String("config"), "")
	if err != nil {
		return err
	}
	override(c, &conf.Log.Level, "log-level")
	override(c, &conf.Log.Format, "log-format")
	log, err := newLogger(conf.Log.Level, conf.Log.Format)
	if err != nil {
		return err
	}
	log, logs := api.TeeLogger(log) // the API's log streams carry every record
	audit, checkpoints, err := auditConfigOf(c, conf)
	if err != nil {
		return err
	}
	override(c, &conf.Address, "address")
	override(c, &conf.TLS.Cert, "tls-cert")
	override(c, &conf.TLS.Key, "tls-key")
	override(c, &conf.KES.Enclave, "kes-enclave")
	if c.IsSet("key-cache") {
		conf.Cache.Keys = c.Int("key-cache")
	}
	if err := config.ValidKeyCache(conf.Cache.Keys); err != nil {
		return fmt.Errorf("--key-cache: %w", err)
	}
	override(c, &conf.Memory.Limit, "memory-limit")
	if err := applyMemoryLimit(conf.Memory.Limit, log); err != nil { // memlimit.go
		return fmt.Errorf("--memory-limit: %w", err)
	}
	if dir := first(pos); dir != "" {
		conf.Dir = dir
	}
	logHSMKeySource(c, log)
	cleanup, err := serverDirAndHSMs(conf, hsmKeyOnly(c), c.Bool("dev"))
	if err != nil {
		return err
	}
	defer cleanup()
	version, commit := buildVersion()
	cfg := node.Config{Dir: conf.Dir, HSMs: conf.HSM, Logger: log, Addr: conf.Address,
		CertFile: conf.TLS.Cert, KeyFile: conf.TLS.Key, ClientCAFile: conf.TLS.ClientCA,
		Audit: audit, Checkpoints: checkpoints, KESEnclave: conf.KES.Enclave, Version: version, Commit: commit,
		HSMCheckInterval: c.Duration("hsm-check-interval"), KeyCache: conf.Cache.Keys,
		Limits: api.Limits{MaxConns: c.Int("max-conns"), MaxConnsPerIP: c.Int("max-conns-per-ip")},
		Snapshots: node.SnapshotSettings{Disabled: conf.Snapshot.Disabled, Events: conf.Snapshot.Events,
			Interval: conf.Snapshot.Interval, Keep: conf.Snapshot.Keep},
	}
	if err := clusterOf(c, conf, &cfg); err != nil {
		return err
	}
	clusterAuditDefaults(&cfg, c.IsSet("audit-batch") || conf.Audit.Batch != 0, c.IsSet("audit-wait") || conf.Audit.Wait != 0)
	tr, err := transitOf(conf.Transit, c.String("transit-enclave"), c.Bool("dev"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rs := &restarter{stop: stop, log: log, logs: logs} // restart.go: POST /v1/debug/restart, log streams
	cfg.ConfigureAPI = func(a *api.Config) { rs.configure(a); tr.configure(a) }
	return rs.after(runServer(ctx, cfg, c.Bool("dev"), tr))
}

// serverDirAndHSMs completes the data dir and the HSMs of conf: the
// software HSM key hsmKey goes first; --dev without a data dir runs on a
// throw-away one (removed by cleanup) and, without any HSM, with a new
// software HSM key. It makes the data dir.
func serverDirAndHSMs(conf *config.Config, hsmKey string, dev bool) (cleanup func(), err error) {
	cleanup = func() {}
	switch {
	case dev && conf.Dir == "":
		if conf.Dir, err = os.MkdirTemp("", "kmsledger-dev-"); err != nil {
			return cleanup, err
		}
		dir := conf.Dir
		cleanup = func() { os.RemoveAll(dir) }
		if hsmKey == "" && len(conf.HSM) == 0 {
			if hsmKey, err = softkey.Generate(rand.Reader); err != nil {
				return cleanup, err
			}
		}
	case conf.Dir == "":
		conf.Dir = "kmsledger-data"
	}
	if err := conf.PrependSoftKey(hsmKey); err != nil {
		return cleanup, err
	}
	if len(conf.HSM) == 0 {
		return cleanup, errors.New("no HSM: set KMSLEDGER_HSM_KEY or MINIO_KMS_HSM_KEY (make one with `kmsledger --soft-hsm` and keep it safe), configure one in --config, or run with --dev")
	}
	return cleanup, os.MkdirAll(conf.Dir, 0o700)
}

// runServer opens the node (cmd/node), listens, prints how to reach it
// and serves until ctx ends; then the node closes in its shutdown order.
func runServer(ctx context.Context, cfg node.Config, dev bool, tr transitSetup) error {
	restoreGC := relaxGC() // startgc.go
	n, err := node.Open(ctx, cfg)
	restoreGC()
	if err != nil {
		return err
	}
	defer n.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	if dev {
		if err := createDevEnclaves(ctx, n, append(tr.enclaves(), cfg.KESEnclave)...); err != nil {
			ln.Close()
			return err
		}
	}
	printBanner(n, cfg, ln.Addr().String(), dev)
	printTransitBanner(n, tr, ln.Addr().String(), dev)
	return n.Serve(ctx, ln)
}

// createDevEnclaves makes the enclave of the dev-mode environment and
// the KES and Transit enclaves, unless they exist.
func createDevEnclaves(ctx context.Context, n *node.Node, others ...string) error {
	if _, err := n.Handler.Execute(ctx, n.RootID, "dev-enclave", commands.CreateEnclave{Name: devEnclave}); err != nil && !errors.Is(err, commands.ErrEnclaveExists) {
		return err
	}
	for _, e := range others {
		if e == "" || e == devEnclave {
			continue
		}
		if _, err := n.Handler.Execute(ctx, n.RootID, "dev-enclave-"+e, commands.CreateEnclave{Name: e}); err != nil && !errors.Is(err, commands.ErrEnclaveExists) {
			return err
		}
	}
	return nil
}

// printBanner prints where the node serves, the root API key when the
// ledger was made now (or in dev mode), the certificate to trust, and in
// dev mode the environment for MinIO and the CLI.
func printBanner(n *node.Node, cfg node.Config, addr string, dev bool) {
	fmt.Printf("kmsledger %s serving https://%s (data: %s)\n", cfg.Version, addr, cfg.Dir)
	if (n.Created || dev) && n.RootKey != "" {
		fmt.Printf("\nRoot API key (printed once; recompute with `kmsledger identity --config` or `--hsm-key`):\n  %s\nRoot identity: %s\n", n.RootKey, n.RootID)
	}
	if n.CAFile != "" {
		fmt.Printf("TLS certificate (trust it as a CA): %s\n", n.CAFile)
	}
	if cfg.KESEnclave != "" {
		fmt.Printf("KES API: https://%s (KES identities act in enclave %s)\n", addr, cfg.KESEnclave)
	}
	if dev {
		fmt.Printf("\nFor MinIO and the kmsledger CLI:\n")
		fmt.Printf("export MINIO_KMS_SERVER=https://%s\n", addr)
		fmt.Printf("export MINIO_KMS_API_KEY=%s\n", n.RootKey)
		fmt.Printf("export MINIO_KMS_ENCLAVE=%s\n", devEnclave)
		fmt.Printf("export MINIO_KMS_SSE_KEY=%s\n", devSSEKey)
		fmt.Printf("export KMSLEDGER_CA_FILE=%s\n", n.CAFile)
		fmt.Printf("# MinIO: copy %s into <certs-dir>/CAs/\n", filepath.Base(n.CAFile))
	}
	os.Stdout.Sync()
}

// buildVersion reports the module version and VCS revision of this build.
func buildVersion() (version, commit string) {
	version, commit = "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	return version, commit
}

// clusterAuditDefaults sets the audit backlog and slot wait of a cluster
// node to ledger.DefaultClusterAuditBatch and DefaultClusterAuditWait
// unless they were set: while the AUDIT stream elects a new leader,
// records wait in memory and requests do not, and once the backlog is
// full a request waits for the rest of the election rather than being
// answered 503.
func clusterAuditDefaults(cfg *node.Config, batchSet, waitSet bool) {
	if (cfg.Cluster == nil && cfg.External == nil) || cfg.Audit == nil {
		return
	}
	if !batchSet {
		cfg.Audit.Batch = ledger.DefaultClusterAuditBatch
	}
	if !waitSet {
		cfg.Audit.Wait = ledger.DefaultClusterAuditWait
	}
}
