package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures Run.
type Config struct {
	API      string // "kms" (default) or "kes"
	Enclave  string // kms API: the enclave of the benchmark key (created if missing)
	Workers  int
	Duration time.Duration // of one run of one operation on one target
	Rounds   int           // each target runs each operation once per round
	Ops      []string      // OpGenerate, OpDecrypt, OpCreate, OpBatch
	Batch    int           // frames per OpBatch request
	// Keys is the working set of OpPairRandom: keys named
	// bench-key-0000000 and on, created by the set-up where missing.
	Keys int
	// Enclaves spreads the working set over that many enclaves, named
	// Enclave-0000 and on (created where missing): key i lives in
	// enclave i mod Enclaves. 0 or 1: all in Enclave.
	Enclaves int
	// Warm has the set-up use every key of the working set once (a
	// pair each) before measuring, so that OpPairRandom measures a
	// server whose caches hold the set, not its first use of each key.
	Warm bool

	Server Target   // the server under test
	Others []Target // more servers in the same rotation (e.g. KES)
	// Baseline, if set, is the command line that starts a bare server
	// (ServeBare) printing "listening on ADDR"; its canned answers are
	// appended as NAME=HEX arguments.
	Baseline []string

	Out io.Writer
}

// Target is one server in the rotation.
type Target struct {
	Name string
	Endpoint
	PID int // its process, for CPU per operation (0: not measured)
}

// Result is the outcome of one operation on one target, over all rounds.
type Result struct {
	Op, Target string
	OpsPerSec  []float64       // per round
	CPUPerOp   []time.Duration // per round; empty without a PID
	Latencies  []time.Duration // every operation, sorted

	lastRound []time.Duration // the last round's latencies, sorted
}

type runner struct {
	Target
	d driver
}

// Run measures cfg's operations on every target, in rotation, and writes
// a line per run and a summary table to cfg.Out.
func Run(ctx context.Context, cfg Config) ([]*Result, error) {
	cfg = withDefaults(cfg)
	var runners []*runner
	defer func() {
		for _, r := range runners {
			r.d.close()
		}
	}()
	var canned map[string][]byte
	for i, t := range append([]Target{cfg.Server}, cfg.Others...) {
		d, err := newDriver(cfg, t.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		runners = append(runners, &runner{Target: t, d: d})
		c, err := d.setup(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: set-up: %w", t.Name, err)
		}
		if i == 0 {
			canned = c
		}
	}
	if len(cfg.Baseline) > 0 {
		bare, stop, err := startBare(ctx, cfg, canned)
		if err != nil {
			return nil, err
		}
		defer stop()
		runners = append(runners, bare)
	}
	fmt.Fprintf(cfg.Out, "%s API, %d workers, %s per run, %d rounds, targets %s\n", cfg.API, cfg.Workers, cfg.Duration, cfg.Rounds, names(runners))
	results := map[string]*Result{}
	var order []*Result
	for round := 1; round <= cfg.Rounds; round++ {
		for _, op := range cfg.Ops {
			for _, r := range runners {
				fn, err := r.d.op(op, cfg.Batch)
				if err != nil {
					return order, fmt.Errorf("%s: %w", r.Name, err)
				}
				key := op + "/" + r.Name
				res := results[key]
				if res == nil {
					res = &Result{Op: opName(op, cfg.Batch), Target: r.Name}
					results[key] = res
					order = append(order, res)
				}
				if err := measure(ctx, cfg, r, fn, res); err != nil {
					return order, fmt.Errorf("%s %s: %w", r.Name, op, err)
				}
				fmt.Fprintf(cfg.Out, "round %d  %-14s %-12s %9.0f ops/s  p50 %-8s p99 %-8s%s\n", round, res.Op, r.Name,
					last(res.OpsPerSec), roundDur(res.lastP(0.5)), roundDur(res.lastP(0.99)), cpuText(res.CPUPerOp, true))
			}
		}
	}
	for _, res := range order {
		slices.Sort(res.Latencies)
		res.lastRound = nil
	}
	writeSummary(cfg.Out, order)
	return order, nil
}

func withDefaults(cfg Config) Config {
	if cfg.API == "" {
		cfg.API = "kms"
	}
	if cfg.Enclave == "" {
		cfg.Enclave = "bench"
	}
	cfg.Workers = max(cfg.Workers, 1)
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	cfg.Rounds = max(cfg.Rounds, 1)
	if len(cfg.Ops) == 0 {
		cfg.Ops = []string{OpGenerate, OpDecrypt}
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 16
	}
	if cfg.Server.Name == "" {
		cfg.Server.Name = "kmsledger"
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	return cfg
}

func newDriver(cfg Config, e Endpoint) (driver, error) {
	switch cfg.API {
	case "kms":
		return newKMSDriver(e, cfg)
	case "kes":
		return newKESDriver(e)
	}
	return nil, fmt.Errorf("unknown API %q: want kms or kes", cfg.API)
}

func opName(op string, batch int) string {
	switch op {
	case OpGenerate:
		return "GenerateKey"
	case OpDecrypt:
		return "Decrypt"
	case OpCreate:
		return "CreateKey"
	case OpBatch:
		return "GenerateKey×" + strconv.Itoa(batch)
	case OpPair:
		return "Pair(hot)"
	case OpPairRandom:
		return "Pair(random)"
	}
	return op
}

func names(rs []*runner) string {
	var n []string
	for _, r := range rs {
		n = append(n, r.Name)
	}
	return strings.Join(n, ", ")
}

// measure runs fn from cfg.Workers goroutines for cfg.Duration.
func measure(ctx context.Context, cfg Config, r *runner, fn func(context.Context) error, res *Result) error {
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for range cfg.Workers { // warm the connections, untimed
		wg.Go(func() {
			if err := fn(ctx); err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return *e
	}
	cpu0, cpuErr := procCPU(r.PID)
	lat := make([][]time.Duration, cfg.Workers)
	start := time.Now()
	end := start.Add(cfg.Duration)
	for w := range cfg.Workers {
		wg.Go(func() {
			for {
				t := time.Now()
				if !t.Before(end) || ctx.Err() != nil {
					return
				}
				if err := fn(ctx); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, cpuErr1 := procCPU(r.PID)
	if e := failed.Load(); e != nil {
		return *e
	}
	var n int
	first := len(res.Latencies)
	for _, l := range lat {
		n += len(l)
		res.Latencies = append(res.Latencies, l...)
	}
	slices.Sort(res.Latencies[first:])
	res.lastRound = res.Latencies[first:]
	res.OpsPerSec = append(res.OpsPerSec, float64(n)/elapsed.Seconds())
	if r.PID > 0 && cpuErr == nil && cpuErr1 == nil && n > 0 {
		res.CPUPerOp = append(res.CPUPerOp, (cpu1-cpu0)/time.Duration(n))
	}
	return nil
}

// procCPU is the user + system CPU time of process pid (/proc/PID/stat
// fields 14 and 15, in clock ticks of 1/100 s, Linux's USER_HZ).
func procCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, errors.New("no pid")
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+2:]) // from field 3 on
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// startBare starts the bare server command with the canned answers and
// returns it as a target.
func startBare(ctx context.Context, cfg Config, canned map[string][]byte) (*runner, func(), error) {
	args := append(slices.Clone(cfg.Baseline[1:]), cannedArgs(canned)...)
	cmd := exec.CommandContext(ctx, cfg.Baseline[0], args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("baseline: %w", err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	sc := bufio.NewScanner(out)
	addr := ""
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
			addr = strings.TrimSpace(a)
			break
		}
	}
	if addr == "" {
		stop()
		return nil, nil, errors.New("baseline: the bare server did not start")
	}
	go io.Copy(io.Discard, out)
	e := cfg.Server.Endpoint
	e.Addr, e.Insecure, e.RootCAs = addr, true, nil
	d, err := newDriver(cfg, e)
	if err != nil {
		stop()
		return nil, nil, err
	}
	if kd, ok := d.(*kmsDriver); ok {
		kd.ct = []byte("canned") // the bare server answers whatever it is sent
	}
	if kd, ok := d.(*kesDriver); ok {
		kd.ct = []byte("canned")
	}
	return &runner{Target: Target{Name: "bare-mtls", Endpoint: e, PID: cmd.Process.Pid}, d: d}, stop, nil
}
