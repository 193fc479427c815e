package main

// bench: drive a running server (package cmd/bench).

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/cmd/bench"
)

func benchCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:  "bench",
			Usage: "measure a running server: ops/s, latency percentiles and server CPU per operation",
			Description: "Drives the server (--server, root or any API key allowed to use the enclave) through the kms\n" +
				"API, or the KES API with --api kes, from --workers goroutines for --duration per run, and prints\n" +
				"one line per run and a summary. --server-pid adds the server's CPU time per operation (from\n" +
				"/proc/PID/stat). --baseline also starts a bare mTLS server that answers the same protocol with\n" +
				"canned bytes; --compare adds another server (e.g. KES). The targets take turns: A/B/A/B...\n" +
				"Operations: generate, decrypt, create (new keys: ledger writes), batch (GenerateKey × --batch), all.",
			Flags: append([]cli.Flag{
				&cli.StringFlag{Name: "api", Value: "kms", Usage: "kms or kes"},
				&cli.IntFlag{Name: "workers", Aliases: []string{"n"}, Value: 16, Usage: "concurrent workers"},
				&cli.DurationFlag{Name: "duration", Aliases: []string{"d"}, Value: 5e9, Usage: "length of one run (one operation on one target)"},
				&cli.IntFlag{Name: "rounds", Value: 2, Usage: "rounds; every target runs every operation once per round"},
				&cli.StringFlag{Name: "ops", Value: "generate,decrypt", Usage: "comma-separated operations, or all"},
				&cli.IntFlag{Name: "batch", Value: 16, Usage: "GenerateKey frames per batch request"},
				&cli.IntFlag{Name: "keys", Usage: "working set of the pair-random operation: keys bench-key-0000000 and on, created where missing"},
				&cli.IntFlag{Name: "enclaves", Usage: "spread the working set over this many enclaves, --enclave-0000 and on (created where missing)"},
				&cli.BoolFlag{Name: "warm", Usage: "before measuring, use every key of the working set once"},
				&cli.IntFlag{Name: "server-pid", Usage: "process id of the server, for its CPU time per operation"},
				&cli.BoolFlag{Name: "baseline", Usage: "also measure a bare mTLS server answering canned bytes"},
				&cli.StringFlag{Name: "compare", Usage: "host:port of another server measured alike"},
				&cli.StringFlag{Name: "compare-name", Value: "other", Usage: "its name in the output"},
				&cli.IntFlag{Name: "compare-pid", Usage: "its process id"},
				&cli.StringFlag{Name: "compare-ca", Usage: "PEM file of the CA of its certificate (default: --ca)"},
			}, connFlags()...),
			Action: benchAction,
		},
		{
			Name: "bench-bare", Hidden: true, Usage: "the bare server of bench --baseline",
			Flags:  []cli.Flag{&cli.StringFlag{Name: "api", Value: "kms"}, &cli.StringFlag{Name: "address", Value: "127.0.0.1:0"}},
			Action: benchBareAction,
		},
	}
}

func benchAction(c *cli.Context) error {
	key, err := apiKey(c)
	if err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("%w: no API key: set --api-key or MINIO_KMS_API_KEY", errUsage)
	}
	ops := strings.Split(c.String("ops"), ",")
	if c.String("ops") == "all" {
		ops = []string{bench.OpGenerate, bench.OpDecrypt, bench.OpCreate, bench.OpBatch}
		if c.String("api") == "kes" {
			ops = ops[:3]
		}
	}
	endpoint := func(addr, caFile string) (bench.Endpoint, error) {
		e := bench.Endpoint{Addr: addr, APIKey: key, Insecure: c.Bool("insecure")}
		if caFile != "" {
			pool, err := loadCAs(caFile)
			if err != nil {
				return e, err
			}
			e.RootCAs = pool
		}
		return e, nil
	}
	main, err := endpoint(serverList(c)[0], c.String("ca"))
	if err != nil {
		return err
	}
	cfg := bench.Config{API: c.String("api"), Enclave: c.String("enclave"), Workers: c.Int("workers"), Duration: c.Duration("duration"),
		Rounds: c.Int("rounds"), Ops: ops, Batch: c.Int("batch"), Keys: c.Int("keys"), Enclaves: c.Int("enclaves"), Warm: c.Bool("warm"), Out: c.App.Writer,
		Server: bench.Target{Name: "kmsledger", Endpoint: main, PID: c.Int("server-pid")}}
	if addr := c.String("compare"); addr != "" {
		ca := c.String("compare-ca")
		if ca == "" {
			ca = c.String("ca")
		}
		e, err := endpoint(addr, ca)
		if err != nil {
			return err
		}
		cfg.Others = append(cfg.Others, bench.Target{Name: c.String("compare-name"), Endpoint: e, PID: c.Int("compare-pid")})
	}
	if c.Bool("baseline") {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.Baseline = []string{self, "bench-bare", "--api", cfg.API}
	}
	_, err = bench.Run(c.Context, cfg)
	return err
}

func benchBareAction(c *cli.Context) error {
	canned, err := bench.ParseCanned(c.Args().Slice())
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.String("address"))
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "listening on %s\n", ln.Addr())
	return bench.ServeBare(ln, bench.BareConfig{API: c.String("api"), Canned: canned})
}
