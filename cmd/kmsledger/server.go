package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
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
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// rootAPIKeyLabel derives the root API key from a software HSM key, so a
// lost printout is recoverable from the HSM key (kmsledger identity
// --hsm-key): seed = HKDF-SHA256(hsm key, info = this label).
const rootAPIKeyLabel = "kmsledger/root-api-key/v1"

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
				&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"KMSLEDGER_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
				&cli.DurationFlag{Name: "hsm-check-interval", Value: 30 * time.Second, EnvVars: []string{"KMSLEDGER_HSM_CHECK_INTERVAL"}, Usage: "how often the configured HSMs are probed (an outage is logged and shown by /v1/health/ready)"},
				&cli.IntFlag{Name: "max-conns", Value: api.DefaultMaxConns, EnvVars: []string{"KMSLEDGER_MAX_CONNS"}, Usage: "open client connections in all; more are closed when accepted (-1 = no limit)"},
				&cli.IntFlag{Name: "max-conns-per-ip", Value: api.DefaultMaxConnsPerIP, EnvVars: []string{"KMSLEDGER_MAX_CONNS_PER_IP"}, Usage: "open client connections from one IP address (-1 = no limit; raise it behind a load balancer)"},
			}, auditServerFlags()...), // audit.go: --audit*, --checkpoint-*
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
		key, id, err := identityFromConfig(c.Context, conf, c.Args().First())
		if err != nil {
			return err
		}
		fmt.Printf("Root API key: %s\nIdentity:     %s\n", key, id)
	case hsmKeyOnly(c) != "":
		hk, err := softkey.Parse(hsmKeyOnly(c))
		if err != nil {
			return err
		}
		key, id, err := rootAPIKey(hk)
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

// rootAPIKey derives the root API key and identity from a software HSM key.
func rootAPIKey(hk *softkey.Key) (key, identity string, err error) {
	seed := hk.DeriveSeed(rootAPIKeyLabel)
	defer clear(seed)
	key = "k1:" + base64.RawURLEncoding.EncodeToString(seed)
	signer, err := wire.ParseAPIKey(key)
	if err != nil {
		return "", "", err
	}
	identity, err = wire.Identity(signer.Public())
	return key, identity, err
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
	dev := c.Bool("dev")
	dir := first(pos)
	conf, err := loadServerConfig(c.String("config"), "")
	if err != nil {
		return err
	}
	override(c, &conf.Log.Level, "log-level")
	log, err := newLogger(conf.Log.Level, conf.Log.Format)
	if err != nil {
		return err
	}
	audit := auditSettingsOf(c)
	if !c.IsSet("audit-interval") && conf.Audit.Interval > 0 {
		audit.interval = conf.Audit.Interval
	}
	if !c.IsSet("audit-batch") && conf.Audit.Batch > 0 {
		audit.batch = conf.Audit.Batch
	}
	if !c.IsSet("audit-sync") && conf.Audit.Sync {
		audit.sync = true
	}
	if !c.IsSet("audit-wait") && conf.Audit.Wait > 0 {
		audit.wait = conf.Audit.Wait
	}
	override(c, &conf.Address, "address")
	override(c, &conf.TLS.Cert, "tls-cert")
	override(c, &conf.TLS.Key, "tls-key")
	override(c, &conf.KES.Enclave, "kes-enclave")
	if dir != "" {
		conf.Dir = dir
	}
	hsmKey := hsmKeyOnly(c)
	logHSMKeySource(c, log)
	switch {
	case dev && conf.Dir == "":
		if conf.Dir, err = os.MkdirTemp("", "kmsledger-dev-"); err != nil {
			return err
		}
		defer os.RemoveAll(conf.Dir)
		if hsmKey == "" && len(conf.HSM) == 0 {
			if hsmKey, err = softkey.Generate(rand.Reader); err != nil {
				return err
			}
		}
	case conf.Dir == "":
		conf.Dir = "kmsledger-data"
	}
	if err := conf.PrependSoftKey(hsmKey); err != nil {
		return err
	}
	if len(conf.HSM) == 0 {
		return errors.New("no HSM: set KMSLEDGER_HSM_KEY or MINIO_KMS_HSM_KEY (make one with `kmsledger --soft-hsm` and keep it safe), configure one in --config, or run with --dev")
	}
	if err := os.MkdirAll(conf.Dir, 0o700); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runServer(ctx, serverConfig{
		dir: conf.Dir, addr: conf.Address, dev: dev, hsms: conf.HSM,
		certFile: conf.TLS.Cert, keyFile: conf.TLS.Key, log: log,
		kesEnclave: conf.KES.Enclave, audit: audit, clientCA: conf.TLS.ClientCA,
		hsmCheck: c.Duration("hsm-check-interval"),
		limits:   api.Limits{MaxConns: c.Int("max-conns"), MaxConnsPerIP: c.Int("max-conns-per-ip")},
	})
}

type serverConfig struct {
	dir, addr         string
	dev               bool
	hsms              []config.HSM
	certFile, keyFile string
	log               *slog.Logger
	kesEnclave        string // serve the KES API for this enclave ("" = off)
	audit             auditSettings
	clientCA          string        // PEM file: only client certificates it issued are accepted
	hsmCheck          time.Duration // how often the configured HSMs are probed
	limits            api.Limits    // connection caps (the rest: defaults)
}

func runServer(ctx context.Context, cfg serverConfig) error {
	log := cfg.log
	hsms, errs := openHSMs(ctx, cfg.hsms, log)
	defer hsms.Close()
	if len(hsms.list) == 0 {
		return fmt.Errorf("no HSM could be opened (nothing was changed): %w", errors.Join(errs...))
	}
	store, err := ledger.Open(ctx, ledger.Config{Dir: cfg.dir, Logger: log})
	if err != nil {
		return err
	}
	defer store.Close()
	proj, err := projections.Open(ctx, store, nil, log)
	if err != nil {
		return err
	}
	defer proj.Close()

	// The root API key: derived from the first software HSM key when that
	// key initialises the ledger (recomputable with `identity`), otherwise
	// random and kept sealed under the REK (`identity --config`).
	var rootKey string
	if k, ok := hsms.list[0].W.(*softkey.Key); ok {
		rootKey, _, err = rootAPIKey(k)
	} else {
		rootKey, err = wire.GenerateAPIKey(rand.Reader)
	}
	if err != nil {
		return err
	}
	rootID, err := identityOfKey(rootKey)
	if err != nil {
		return err
	}
	var initialized bool
	proj.View(func(s *projections.State) { initialized = s.Initialized })
	if !initialized && len(errs) > 0 {
		// A new ledger is sealed under every configured HSM: one that is
		// not there now would silently be left out.
		return fmt.Errorf("%s: not initialising the ledger while configured HSMs are unavailable (nothing was written): %w", cfg.dir, errors.Join(errs...))
	}
	params := commands.InitParams{RootIdentity: rootID, DefaultType: string(hsm.AES256)}
	if _, ok := hsms.list[0].W.(*softkey.Key); !ok {
		params.RootKey = rootKey
	}
	rek, unsealed, err := commands.Unseal(ctx, store, proj, hsms.list, params)
	if err != nil {
		if len(errs) > 0 {
			err = fmt.Errorf("%w; HSMs that could not be opened: %w", err, errors.Join(errs...))
		}
		return fmt.Errorf("%s: %w (nothing was changed)", cfg.dir, err)
	}
	init, created := unsealed.Init, unsealed.Created
	log.Info("root encryption key unsealed", "hsm", unsealed.OpenedBy)
	if !created {
		if sealed, err := commands.RootKey(rek, init); err == nil && sealed != "" {
			rootKey = sealed
		} else if init.RootIdentity != rootID {
			rootKey = "" // not derivable from this configuration
		}
		rootID = init.RootIdentity
	}
	h := commands.NewHandler(store, proj, rek, log)
	// Configured HSMs without a sealing get one now (as minkms does),
	// unless removed with rm-hsm; a failure leaves the node running.
	sealedNow, err := h.SealConfigured(ctx, rootID, hsms.list)
	for _, name := range sealedNow {
		log.Info("sealed the root encryption key under a configured HSM", "hsm", name)
	}
	if err != nil {
		log.Error("could not seal the root encryption key under a configured HSM (it cannot start this node alone; see ls-hsm)", "err", err)
	}
	if n, err := h.Reconcile(ctx); err != nil {
		return fmt.Errorf("reconcile sealed material: %w", err)
	} else if n > 0 {
		log.Info("erased unreferenced sealed material", "count", n)
	}

	// Scheduled deletions whose deadline passed while the server was
	// down are carried out before serving; then every 30 seconds.
	if n, err := h.DestroyDue(ctx); err != nil {
		return fmt.Errorf("scheduled deletions: %w", err)
	} else if n > 0 {
		log.Info("carried out scheduled key deletions whose deadline passed while stopped", "count", n)
	}
	go h.RunScheduler(ctx, 30*time.Second)

	// Audit and checkpoints (audit_server.go). Closed in reverse order
	// after the server stops: audit records first, then a last
	// checkpoint covering them, then the ledger.
	auditor, stopAudit, err := startAudit(ctx, cfg.audit, store, proj, rek, rootID, log)
	if err != nil {
		return err
	}
	defer stopAudit()

	cert, caFile, err := serverCertificate(cfg)
	if err != nil {
		return err
	}
	var clientCAs *x509.CertPool
	if cfg.clientCA != "" {
		pem, err := os.ReadFile(cfg.clientCA)
		if err != nil {
			return fmt.Errorf("tls.client_ca: %w", err)
		}
		clientCAs = x509.NewCertPool()
		if !clientCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls.client_ca %s: no PEM certificate", cfg.clientCA)
		}
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	version, commit := buildVersion()
	srv := api.New(api.Config{Handler: h, Projection: proj, Certificate: cert, Version: version, Commit: commit, Logger: log,
		KESEnclave: cfg.kesEnclave, HSMs: hsms.list, Audit: auditor, ClientCAs: clientCAs, HSMCheckInterval: cfg.hsmCheck,
		Limits: cfg.limits})
	addr := ln.Addr().String()
	if cfg.dev {
		if _, err := h.Execute(ctx, init.RootIdentity, "dev-enclave", commands.CreateEnclave{Name: devEnclave}); err != nil && !errors.Is(err, commands.ErrEnclaveExists) {
			return err
		}
		if cfg.kesEnclave != "" && cfg.kesEnclave != devEnclave {
			if _, err := h.Execute(ctx, init.RootIdentity, "dev-kes-enclave", commands.CreateEnclave{Name: cfg.kesEnclave}); err != nil && !errors.Is(err, commands.ErrEnclaveExists) {
				return err
			}
		}
	}
	fmt.Printf("kmsledger %s serving https://%s (data: %s)\n", version, addr, cfg.dir)
	if (created || cfg.dev) && rootKey != "" {
		fmt.Printf("\nRoot API key (printed once; recompute with `kmsledger identity --config` or `--hsm-key`):\n  %s\nRoot identity: %s\n", rootKey, rootID)
	}
	if caFile != "" {
		fmt.Printf("TLS certificate (trust it as a CA): %s\n", caFile)
	}
	if cfg.kesEnclave != "" {
		fmt.Printf("KES API: https://%s (KES identities act in enclave %s)\n", addr, cfg.kesEnclave)
	}
	if cfg.dev {
		fmt.Printf("\nFor MinIO and the kmsledger CLI:\n")
		fmt.Printf("export MINIO_KMS_SERVER=https://%s\n", addr)
		fmt.Printf("export MINIO_KMS_API_KEY=%s\n", rootKey)
		fmt.Printf("export MINIO_KMS_ENCLAVE=%s\n", devEnclave)
		fmt.Printf("export MINIO_KMS_SSE_KEY=%s\n", devSSEKey)
		fmt.Printf("export KMSLEDGER_CA_FILE=%s\n", caFile)
		fmt.Printf("# MinIO: copy %s into <certs-dir>/CAs/\n", filepath.Base(caFile))
	}
	os.Stdout.Sync()
	err = srv.Serve(ctx, ln)
	log.Info("server stopped")
	return err
}

// identityOfKey returns the h1: identity of an API key.
func identityOfKey(apiKey string) (string, error) {
	signer, err := wire.ParseAPIKey(apiKey)
	if err != nil {
		return "", err
	}
	return wire.Identity(signer.Public())
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
