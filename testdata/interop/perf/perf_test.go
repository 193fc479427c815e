package perf

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kms"
	pb "github.com/minio/kms-go/kms/protobuf"
	"google.golang.org/protobuf/proto"
)

// Settings of BenchmarkDataPlane, from the environment.
//
//	KMSLEDGER_BENCH_BIN       kmsledger binary to measure (default: built from this checkout)
//	KMSLEDGER_BENCH_BASE_BIN  a second kmsledger binary (e.g. built before a change) measured alongside
//	KMSLEDGER_BENCH_SECONDS   seconds per round and operation (default 5)
//	KMSLEDGER_BENCH_ROUNDS    rounds, each server once per round in turn (default 3)
const clients = 16

// server is one measured server process.
type server struct {
	name string
	pid  int
	kms  *kms.Client // 16 goroutines share it, as MinIO's do
	env  *harness.DevEnv
	ct   []byte // a ciphertext of the benchmark key that this server decrypts
	stop func()
}

// BenchmarkDataPlane measures GenerateKey and Decrypt through the kms-go
// SDK with 16 concurrent goroutines against real server processes: the
// kmsledger under test (and, with KMSLEDGER_BENCH_BASE_BIN, another
// kmsledger binary) and a bare Go mTLS server with kmsledger's TLS settings
// and certificate that answers the same protocol with canned bytes. The
// servers take turns, round after round (A/B/C/A/B/C...), so that the
// machine's noise hits them alike. It reports ops/s and the server
// process's CPU time per request (from /proc/PID/stat), and both as ratios
// to the bare server. b.N is ignored: run it with -benchtime 1x.
//
//	cd testdata/interop && go test ./perf -run '^$' -bench DataPlane -benchtime 1x
func BenchmarkDataPlane(b *testing.B) {
	secs := envInt("KMSLEDGER_BENCH_SECONDS", 5)
	rounds := envInt("KMSLEDGER_BENCH_ROUNDS", 3)
	tmp := b.TempDir()

	bin := os.Getenv("KMSLEDGER_BENCH_BIN")
	if bin == "" {
		var err error
		if bin, err = harness.BuildKMSLedger(tmp); err != nil {
			b.Fatal(err)
		}
	}
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	main, gen, dec := startKMSLedger(b, "kmsledger", bin, filepath.Join(tmp, "a"))
	servers = append(servers, main)
	if base := os.Getenv("KMSLEDGER_BENCH_BASE_BIN"); base != "" {
		s, _, _ := startKMSLedger(b, "kmsledger-base", base, filepath.Join(tmp, "b"))
		servers = append(servers, s)
	}
	servers = append(servers, startBare(b, tmp, main.env, gen, dec))

	type figure struct{ ops, cpu []float64 }
	results := map[string]*figure{}
	ad := []byte(`{"bucket":"bucket/object"}`)
	ops := map[string]func(ctx context.Context, s *server) error{
		"GenerateKey": func(ctx context.Context, s *server) error {
			_, err := s.kms.GenerateKey(ctx, benchEnclave, &kms.GenerateKeyRequest{Name: benchKey, AssociatedData: ad, Length: 32})
			return err
		},
		"Decrypt": func(ctx context.Context, s *server) error {
			_, err := s.kms.Decrypt(ctx, benchEnclave, &kms.DecryptRequest{Name: benchKey, Ciphertext: s.ct, AssociatedData: ad})
			return err
		},
	}
	for r := range rounds {
		for _, op := range []string{"GenerateKey", "Decrypt"} {
			for _, s := range servers {
				n, cpu := run(b, s, ops[op], time.Duration(secs)*time.Second)
				k := op + "/" + s.name
				if results[k] == nil {
					results[k] = &figure{}
				}
				results[k].ops = append(results[k].ops, float64(n)/float64(secs))
				results[k].cpu = append(results[k].cpu, float64(cpu.Microseconds())/float64(n))
				fmt.Printf("round %d %-12s %-15s %8.0f ops/s %6.1f server-cpu-µs/op\n", r+1, op, s.name, float64(n)/float64(secs), float64(cpu.Microseconds())/float64(n))
			}
		}
	}
	for _, op := range []string{"GenerateKey", "Decrypt"} {
		bare := results[op+"/bare-mtls"]
		for _, s := range servers {
			f := results[op+"/"+s.name]
			fmt.Printf("%-12s %-15s median %8.0f ops/s (%.2f of bare) %6.1f server-cpu-µs/op (%.2fx bare)\n",
				op, s.name, median(f.ops), median(f.ops)/median(bare.ops), median(f.cpu), median(f.cpu)/median(bare.cpu))
			b.ReportMetric(median(f.ops), op+"-"+s.name+"-ops/s")
			b.ReportMetric(median(f.cpu), op+"-"+s.name+"-cpu-µs/op")
		}
	}
}

const (
	benchEnclave = "bench"
	benchKey     = "bench-key"
)

// startKMSLedger starts `bin server --dev` in dir, creates the benchmark
// enclave and key, and returns the server with one real GenerateKey and
// Decrypt answer (the canned bytes of the bare server).
func startKMSLedger(b *testing.B, name, bin, dir string) (*server, *kms.GenerateKeyResponse, *kms.DecryptResponse) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	dev, err := harness.StartDev(bin, dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	c := dev.Env.Root
	if err := c.CreateEnclave(ctx, &kms.CreateEnclaveRequest{Name: benchEnclave}); err != nil {
		dev.Stop()
		b.Fatal(err)
	}
	if err := c.CreateKey(ctx, benchEnclave, &kms.CreateKeyRequest{Name: benchKey}); err != nil {
		dev.Stop()
		b.Fatal(err)
	}
	ad := []byte(`{"bucket":"bucket/object"}`)
	g, err := c.GenerateKey(ctx, benchEnclave, &kms.GenerateKeyRequest{Name: benchKey, AssociatedData: ad, Length: 32})
	if err != nil {
		dev.Stop()
		b.Fatal(err)
	}
	d, err := c.Decrypt(ctx, benchEnclave, &kms.DecryptRequest{Name: benchKey, Ciphertext: g[0].Ciphertext, AssociatedData: ad})
	if err != nil {
		dev.Stop()
		b.Fatal(err)
	}
	return &server{name: name, pid: dev.Pid(), kms: c, env: dev.Env, ct: g[0].Ciphertext, stop: dev.Stop}, g[0], d[0]
}

// startBare builds and starts the bare server with canned answers and the
// certificate and key of the kmsledger dev server of devEnv, so both pay the
// same handshake; its client is devEnv's root client pointed at it.
func startBare(b *testing.B, tmp string, devEnv *harness.DevEnv, gen *kms.GenerateKeyResponse, dec *kms.DecryptResponse) *server {
	certDir := filepath.Dir(devEnv.CAFile)
	root, err := harness.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(tmp, "bareserver")
	build := exec.Command("go", "build", "-o", bin, "./internal/bareserver")
	build.Dir = filepath.Join(root, "testdata", "interop")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build bareserver: %v\n%s", err, out)
	}
	var gpb pb.GenerateKeyResponse
	var dpb pb.DecryptResponse
	if err := gen.MarshalPB(&gpb); err != nil {
		b.Fatal(err)
	}
	if err := dec.MarshalPB(&dpb); err != nil {
		b.Fatal(err)
	}
	gb, err := proto.Marshal(&gpb)
	if err != nil {
		b.Fatal(err)
	}
	db, err := proto.Marshal(&dpb)
	if err != nil {
		b.Fatal(err)
	}
	addr, err := harness.FreeAddr()
	if err != nil {
		b.Fatal(err)
	}
	p, err := harness.Start(harness.ProcConfig{
		Name: "bareserver", Bin: bin, Dir: tmp, Log: filepath.Join(tmp, "bareserver.log"), Marker: "listening on",
		Args: []string{"-addr", addr, "-cert", filepath.Join(certDir, "cert.pem"), "-key", filepath.Join(certDir, "key.pem"),
			"-canned", "207=" + hex.EncodeToString(gb), "-canned", "206=" + hex.EncodeToString(db)},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.WaitReady(nil); err != nil {
		p.Stop()
		b.Fatal(err)
	}
	env := *devEnv
	env.Endpoint = (&url.URL{Scheme: "https", Host: addr}).String()
	c, err := env.Client(env.RootKey)
	if err != nil {
		p.Stop()
		b.Fatal(err)
	}
	return &server{name: "bare-mtls", pid: p.Pid(), kms: c, ct: gen.Ciphertext, stop: p.Stop}
}

// run drives op from 16 goroutines against s for d and returns the number
// of completed operations and the server process's CPU time meanwhile.
func run(b *testing.B, s *server, op func(context.Context, *server) error, d time.Duration) (int64, time.Duration) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for range clients { // warm the connection pool, untimed
		wg.Go(func() {
			if err := op(ctx, s); err != nil {
				b.Errorf("%s: %v", s.name, err)
			}
		})
	}
	wg.Wait()
	var n atomic.Int64
	var failed atomic.Pointer[error]
	cpu0 := procCPU(b, s.pid)
	end := time.Now().Add(d)
	for range clients {
		wg.Go(func() {
			for time.Now().Before(end) {
				if err := op(ctx, s); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	cpu := procCPU(b, s.pid) - cpu0
	if e := failed.Load(); e != nil {
		b.Fatalf("%s: %v", s.name, *e)
	}
	return n.Load(), cpu
}

// procCPU is the user+system CPU time of pid (/proc/PID/stat fields 14
// and 15, in clock ticks of 1/100 s).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
