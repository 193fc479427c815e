package bench_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/cmd/bench"
	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/hsm/softkey"
	"github.com/kmsledger/kmsledger/projections"
)

// TestMain serves as the bare server when the test binary is started as
// one (bench --baseline starts a command line; here, this binary).
func TestMain(m *testing.M) {
	if api := os.Getenv("KMSLEDGER_TEST_BARE_API"); api != "" {
		canned, err := bench.ParseCanned(os.Args[1:])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.Exit(2)
		}
		fmt.Printf("listening on %s\n", ln.Addr())
		bench.ServeBare(ln, bench.BareConfig{API: api, Canned: canned})
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// startNode serves a node with the KES API on (enclave "kes") and
// returns it with its address and a CA pool trusting it.
func startNode(t *testing.T) (*node.Node, string, *x509.CertPool) {
	t.Helper()
	key, err := softkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(t.Context(), node.Config{Dir: t.TempDir(), HSMs: []config.HSM{{Name: "soft", Soft: &config.Soft{Key: key}}},
		Addr: "127.0.0.1:0", SchedulerInterval: -1, ConfigureAPI: func(c *api.Config) { c.KESEnclave = "kes" }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done; n.Close() })
	roots := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(n.Certificate.Certificate[0])
	roots.AddCert(leaf)
	return n, ln.Addr().String(), roots
}

func keysIn(n *node.Node, enclave string) int {
	c := 0
	n.Proj.View(func(s *projections.State) {
		if e := s.Enclaves[enclave]; e != nil {
			c = len(e.Keys)
		}
	})
	return c
}

// TestRunKMS: every operation on a node and on the bare baseline, in
// turns; the figures are there, CPU with a PID, and key creation writes
// keys.
func TestRunKMS(t *testing.T) {
	n, addr, roots := startNode(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KMSLEDGER_TEST_BARE_API", "kms") // inherited by the bare server only: this process has checked it
	var out bytes.Buffer
	res, err := bench.Run(t.Context(), bench.Config{
		Workers: 2, Duration: 100 * time.Millisecond, Rounds: 2, Batch: 4, Out: &out,
		Ops:      []string{bench.OpGenerate, bench.OpDecrypt, bench.OpCreate, bench.OpBatch},
		Server:   bench.Target{Name: "kmsledger", Endpoint: bench.Endpoint{Addr: addr, APIKey: n.RootKey, RootCAs: roots}, PID: os.Getpid()},
		Baseline: []string{self},
	})
	if err != nil {
		t.Fatalf("Run err = %v\n%s", err, out.String())
	}
	if len(res) != 8 {
		t.Fatalf("Run gave %d results, want 4 operations × 2 targets\n%s", len(res), out.String())
	}
	for _, r := range res {
		if len(r.OpsPerSec) != 2 || r.OpsPerSec[0] <= 0 || len(r.Latencies) == 0 || len(r.CPUPerOp) != 2 {
			t.Errorf("%s on %s: %d rounds, %v ops/s, %d latencies, CPU %v; want 2 rounds of figures with CPU",
				r.Op, r.Target, len(r.OpsPerSec), r.OpsPerSec, len(r.Latencies), r.CPUPerOp)
		}
	}
	if got := keysIn(n, "bench"); got < 2 {
		t.Errorf("enclave bench holds %d keys after CreateKey runs, want more than the benchmark key", got)
	}
	for _, want := range []string{"round 2", "GenerateKey×4", "bare-mtls", "p99.9", "server CPU/op"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunKES: the KES API of a node, and what it does not have.
func TestRunKES(t *testing.T) {
	n, addr, roots := startNode(t)
	if err := nodeClient(t, n, addr, roots).CreateEnclave(t.Context(), "kes"); err != nil {
		t.Fatal(err)
	}
	cfg := bench.Config{API: "kes", Workers: 2, Duration: 50 * time.Millisecond, Out: io.Discard,
		Ops:    []string{bench.OpGenerate, bench.OpDecrypt, bench.OpCreate},
		Server: bench.Target{Name: "kmsledger", Endpoint: bench.Endpoint{Addr: addr, APIKey: n.RootKey, RootCAs: roots}}}
	res, err := bench.Run(t.Context(), cfg)
	if err != nil || len(res) != 3 || res[0].OpsPerSec[0] <= 0 || len(res[0].CPUPerOp) != 0 {
		t.Fatalf("Run(kes) = %d results, %v; want 3 with figures and no CPU (no PID)", len(res), err)
	}
	if got := keysIn(n, "kes"); got < 2 {
		t.Errorf("enclave kes holds %d keys after CreateKey runs", got)
	}
	cfg.Ops = []string{bench.OpBatch}
	if _, err := bench.Run(t.Context(), cfg); err == nil {
		t.Error("Run(kes, batch) succeeded; the KES API has no batches")
	}
}

func nodeClient(t *testing.T, n *node.Node, addr string, roots *x509.CertPool) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Endpoints: []string{addr}, APIKey: n.RootKey, RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestRunRefused: a caller the server refuses, an unknown operation or
// API, and an unreachable server fail with an error before any figure.
func TestRunRefused(t *testing.T) {
	n, addr, roots := startNode(t)
	stranger, err := wire.GenerateAPIKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	ep := bench.Endpoint{Addr: addr, APIKey: n.RootKey, RootCAs: roots}
	for name, cfg := range map[string]bench.Config{
		"unknown identity": {Server: bench.Target{Endpoint: bench.Endpoint{Addr: addr, APIKey: stranger, RootCAs: roots}}},
		"unverified cert":  {Server: bench.Target{Endpoint: bench.Endpoint{Addr: addr, APIKey: n.RootKey}}},
		"unknown op":       {Ops: []string{"nap"}, Server: bench.Target{Endpoint: ep}},
		"unknown API":      {API: "vault", Server: bench.Target{Endpoint: ep}},
		"no server":        {Server: bench.Target{Endpoint: bench.Endpoint{Addr: closed, APIKey: n.RootKey, RootCAs: roots}}},
	} {
		cfg.Duration, cfg.Out = 20*time.Millisecond, io.Discard
		if res, err := bench.Run(t.Context(), cfg); err == nil {
			t.Errorf("%s: Run = %d results, nil; want an error", name, len(res))
		}
	}
}

// TestBareHandler: one canned frame per request frame, with an exact
// Content-Length; refusals for what is not canned or not frames; KES
// routes by path.
func TestBareHandler(t *testing.T) {
	gen := wire.EncodeFrames([]wire.Frame{{Cmd: wire.CmdKeyGenerate, Body: []byte{0x0a, 0x01, 0x41}}})
	canned, err := bench.ParseCanned([]string{"207=" + hex.EncodeToString(gen), "201="})
	if err != nil {
		t.Fatal(err)
	}
	h := bench.BareHandler(bench.BareConfig{API: "kms", Canned: canned})
	post := func(h http.Handler, path string, body []byte) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
		return w
	}
	three := wire.EncodeFrames([]wire.Frame{{Cmd: wire.CmdKeyGenerate}, {Cmd: wire.CmdKeyGenerate}, {Cmd: wire.CmdKeyGenerate}})
	w := post(h, "/v1/kms/e", three)
	if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), bytes.Repeat(gen, 3)) || w.Header().Get("Content-Length") != fmt.Sprint(3*len(gen)) {
		t.Errorf("3 GenerateKey frames: %d %x (length %s), want 3 canned frames", w.Code, w.Body.Bytes(), w.Header().Get("Content-Length"))
	}
	if w := post(h, "/v1/kms/e", wire.EncodeFrames([]wire.Frame{{Cmd: wire.CmdKeyCreate}})); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("KEY:CREATE: %d %q, want 200 and no body", w.Code, w.Body.Bytes())
	}
	if w := post(h, "/v1/kms/e", wire.EncodeFrames([]wire.Frame{{Cmd: wire.CmdKeyDecrypt}})); w.Code != http.StatusNotImplemented {
		t.Errorf("not canned: %d, want 501", w.Code)
	}
	for _, bad := range [][]byte{nil, {0, 207, 0, 0, 0, 9, 1}} {
		if w := post(h, "/v1/kms/e", bad); w.Code != http.StatusBadRequest {
			t.Errorf("body %x: %d, want 400", bad, w.Code)
		}
	}
	kes := bench.BareHandler(bench.BareConfig{API: "kes", Canned: map[string][]byte{bench.OpGenerate: []byte(`{"plaintext":"AA=="}`)}})
	if w := post(kes, "/v1/key/generate/k", []byte(`{}`)); w.Code != 200 || w.Body.String() != `{"plaintext":"AA=="}` {
		t.Errorf("KES generate: %d %q", w.Code, w.Body.String())
	}
	if w := post(kes, "/v1/key/decrypt/k", nil); w.Code != http.StatusNotImplemented {
		t.Errorf("KES decrypt, not canned: %d, want 501", w.Code)
	}
	if _, err := bench.ParseCanned([]string{"207"}); err == nil {
		t.Error("ParseCanned(no =) err = nil")
	}
	if _, err := bench.ParseCanned([]string{"207=zz"}); err == nil {
		t.Error("ParseCanned(bad hex) err = nil")
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		v    []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.999, 7 * time.Millisecond},
		{ms(hundred...), 0.5, 50 * time.Millisecond},
		{ms(hundred...), 0.99, 99 * time.Millisecond},
		{ms(hundred...), 0.999, 100 * time.Millisecond},
		{ms(1, 2), 0.01, 1 * time.Millisecond},
	} {
		if got := bench.Percentile(tc.v, tc.p); got != tc.want {
			t.Errorf("Percentile(%d values, %v) = %v, want %v", len(tc.v), tc.p, got, tc.want)
		}
	}
	if got := bench.Median([]float64{3, 1, 2, 10}); got != 2.5 {
		t.Errorf("Median(3,1,2,10) = %v, want 2.5", got)
	}
}

// TestRunWorkingSet: pair-random runs over a working set the set-up
// creates; a second run reuses it; without one it is refused.
func TestRunWorkingSet(t *testing.T) {
	n, addr, roots := startNode(t)
	var out bytes.Buffer
	cfg := bench.Config{Workers: 3, Duration: 100 * time.Millisecond, Keys: 25, Out: &out,
		Ops:    []string{bench.OpPair, bench.OpPairRandom},
		Server: bench.Target{Name: "kmsledger", Endpoint: bench.Endpoint{Addr: addr, APIKey: n.RootKey, RootCAs: roots}}}
	res, err := bench.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run err = %v\n%s", err, out.String())
	}
	if len(res) != 2 || res[0].Op != "Pair(hot)" || res[1].Op != "Pair(random)" || res[1].OpsPerSec[0] <= 0 {
		t.Fatalf("Run gave %d results, want Pair(hot) and Pair(random) with figures\n%s", len(res), out.String())
	}
	if got := keysIn(n, "bench"); got != 26 {
		t.Errorf("enclave bench holds %d keys, want the benchmark key and 25 of the working set", got)
	}
	if !strings.Contains(out.String(), "working set: 25 keys (25 created, 0 there already)") {
		t.Errorf("first run does not report creating the working set:\n%s", out.String())
	}
	// A name that only looks like one of the set does not count; a
	// larger set reuses the keys there and creates the rest.
	if err := nodeClient(t, n, addr, roots).CreateKey(t.Context(), "bench", "bench-key-0000026x", "", false); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	cfg.Warm, cfg.Keys = true, 30
	if _, err := bench.Run(t.Context(), cfg); err != nil || !strings.Contains(out.String(), "(5 created, 25 there already)") ||
		!strings.Contains(out.String(), "warm-up: one pair on each of the 30 keys") {
		t.Errorf("second run: err %v; want the working set reused, the rest made and a warm-up:\n%s", err, out.String())
	}
	cfg.Keys = 0
	if _, err := bench.Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "--keys") {
		t.Errorf("pair-random without a working set: err = %v, want one naming --keys", err)
	}
}

// TestRunWorkingSetSpread: with Enclaves the working set is spread over
// that many enclaves, key i in enclave i mod Enclaves; a second run
// reuses it, and a key of the set in the wrong enclave does not count.
func TestRunWorkingSetSpread(t *testing.T) {
	n, addr, roots := startNode(t)
	var out bytes.Buffer
	cfg := bench.Config{Workers: 3, Duration: 100 * time.Millisecond, Keys: 10, Enclaves: 3, Warm: true, Out: &out,
		Ops:    []string{bench.OpPairRandom},
		Server: bench.Target{Name: "kmsledger", Endpoint: bench.Endpoint{Addr: addr, APIKey: n.RootKey, RootCAs: roots}}}
	if _, err := bench.Run(t.Context(), cfg); err != nil {
		t.Fatalf("Run err = %v\n%s", err, out.String())
	}
	for enclave, want := range map[string]int{"bench-0000": 4, "bench-0001": 3, "bench-0002": 3, "bench": 1} {
		if got := keysIn(n, enclave); got != want {
			t.Errorf("enclave %s holds %d keys, want %d", enclave, got, want)
		}
	}
	if !strings.Contains(out.String(), "working set: 10 keys (10 created, 0 there already)") ||
		!strings.Contains(out.String(), "warm-up: one pair on each of the 10 keys") {
		t.Errorf("first run does not report the working set and its warm-up:\n%s", out.String())
	}
	// Key 10 belongs in bench-0001; made in bench-0000 it is not the
	// set's, so the next run creates it where it belongs.
	if err := nodeClient(t, n, addr, roots).CreateKey(t.Context(), "bench-0000", "bench-key-0000010", "", false); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	cfg.Keys = 11
	if _, err := bench.Run(t.Context(), cfg); err != nil || !strings.Contains(out.String(), "(1 created, 10 there already)") {
		t.Errorf("second run: err %v; want the set reused and key 10 made in its enclave:\n%s", err, out.String())
	}
	if got := keysIn(n, "bench-0001"); got != 4 {
		t.Errorf("enclave bench-0001 holds %d keys, want 4", got)
	}
}
