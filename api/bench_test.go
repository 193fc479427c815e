package api_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/nodetest"
	"github.com/kmsledger/kmsledger/api/wire"
)

// Benchmarks of the data plane: the whole node (TLS, HTTP, auth, projection
// lookup, Tink) next to a bare Go mTLS server with the same TLS settings that
// answers canned frames, which is the floor the HTTP stack allows. Run:
//
//	go test ./api -run '^$' -bench . -benchtime 3s
//
// Client and server share the process and this machine's cores, so ops/s
// is for "client and server on one host" (README.md, Benchmarks).

const (
	benchEnclave     = "bench"
	benchKey         = "minio-default-key"
	benchParallelism = 8 // goroutines per GOMAXPROCS
	benchBatch       = 100
)

// benchAD is the associated data MinIO sends with a data key request.
func benchAD() []byte { return []byte(`{"bucket":"bucket/object"}`) }

// benchNode is a node with an enclave and a key, a root client for it, and
// one real GenerateKey response (used to size the canned responses).
type benchNode struct {
	s   *stack
	c   *client.Client
	gen *wire.GenerateKeyResponse
}

func newBenchNode(b *testing.B) *benchNode {
	b.Helper()
	ctx := context.Background()
	s := newStack(b)
	c := s.client("")
	b.Cleanup(c.Close)
	if err := c.CreateEnclave(ctx, benchEnclave); err != nil {
		b.Fatal(err)
	}
	if err := c.CreateKey(ctx, benchEnclave, benchKey, "", false); err != nil {
		b.Fatal(err)
	}
	g, err := c.GenerateKey(ctx, benchEnclave, benchKey, 0, benchAD(), 32)
	if err != nil {
		b.Fatal(err)
	}
	return &benchNode{s: s, c: c, gen: g}
}

// bareServer starts a Go HTTPS server with the TLS settings of api.Server
// (RequestClientCert, HTTP/1.1 only, testCert) whose handler reads the
// request body and answers body with an exact Content-Length. It returns a
// root client for it.
func bareServer(b *testing.B, s *stack, body []byte) *client.Client {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	tlsConf := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{nodetest.Certificate(b)},
		ClientAuth:   tls.RequestClientCert,
		NextProtos:   []string{"http/1.1"},
	}
	length := strconv.Itoa(len(body))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			h := w.Header()
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Content-Length", length)
			w.WriteHeader(http.StatusOK)
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // no HTTP/2
		// Close interrupts the handshakes of connections the client's pool
		// dialled in the background; api.Server logs those at debug level.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(tls.NewListener(ln, tlsConf)) }()
	b.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			b.Error(err)
		}
	})
	c, err := client.New(client.Config{Endpoints: []string{ln.Addr().String()}, APIKey: s.RootKey, RootCAs: s.Roots, Timeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}

// cannedFrames is the body of a response of n frames of cmd carrying msg.
func cannedFrames(cmd wire.Command, msg wire.Message, n int) []byte {
	var out []byte
	m := msg.MarshalProto()
	for range n {
		out = wire.AppendFrame(out, cmd, m)
	}
	return out
}

// cpuTime is the process's user+system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runParallel warms the client's connection pool, then runs op from
// benchParallelism*GOMAXPROCS goroutines and reports ops/s, perOp items/s
// under itemUnit (when perOp > 1) and CPU µs per op. The CPU figure is the
// whole process's (getrusage), so it includes the client, the TLS on both
// ends and the GC, not only the server; compare it between sub-benchmarks,
// not with a server measured alone.
func runParallel(b *testing.B, perOp int, itemUnit string, op func(ctx context.Context) error) {
	b.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for range 16 { // one connection per worker, handshakes untimed
		wg.Go(func() { errc <- op(ctx) })
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/sec, "ops/s")
	if perOp > 1 {
		b.ReportMetric(float64(b.N*perOp)/sec, itemUnit)
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
}

// checkGenerate checks a GenerateKey response frame's body.
func checkGenerate(f wire.Frame) error {
	var g wire.GenerateKeyResponse
	if f.Cmd != wire.CmdKeyGenerate {
		return errors.New("bench: response frame is not KEY:GENERATE")
	}
	if err := g.UnmarshalProto(f.Body); err != nil {
		return err
	}
	if len(g.Plaintext) != 32 || len(g.Ciphertext) == 0 {
		return errors.New("bench: bad GenerateKey response")
	}
	return nil
}

func BenchmarkGenerateKey(b *testing.B) {
	n := newBenchNode(b)
	ad := benchAD()
	generate := func(c *client.Client) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			g, err := c.GenerateKey(ctx, benchEnclave, benchKey, 0, ad, 32)
			if err == nil && len(g.Plaintext) != 32 {
				err = errors.New("bench: GenerateKey returned a short key")
			}
			return err
		}
	}
	b.Run("kmsledger", func(b *testing.B) { runParallel(b, 1, "", generate(n.c)) })
	canned := cannedFrames(wire.CmdKeyGenerate, n.gen, 1)
	n.s.Stop() // keep the idle node out of the bare server's CPU figure
	b.Run("bare-mtls", func(b *testing.B) { runParallel(b, 1, "", generate(bareServer(b, n.s, canned))) })
}

func BenchmarkDecrypt(b *testing.B) {
	n := newBenchNode(b)
	ad := benchAD()
	decrypt := func(c *client.Client) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			d, err := c.Decrypt(ctx, benchEnclave, benchKey, 0, n.gen.Ciphertext, ad)
			if err == nil && len(d.Plaintext) != 32 {
				err = errors.New("bench: Decrypt returned a short key")
			}
			return err
		}
	}
	b.Run("kmsledger", func(b *testing.B) { runParallel(b, 1, "", decrypt(n.c)) })
	canned := cannedFrames(wire.CmdKeyDecrypt, &wire.DecryptResponse{Plaintext: n.gen.Plaintext}, 1)
	n.s.Stop()
	b.Run("bare-mtls", func(b *testing.B) { runParallel(b, 1, "", decrypt(bareServer(b, n.s, canned))) })
}

func BenchmarkGenerateKeyBatch100(b *testing.B) {
	n := newBenchNode(b)
	req := (&wire.GenerateKeyRequest{Name: benchKey, AssociatedData: benchAD(), Length: 32}).MarshalProto()
	frames := make([]wire.Frame, benchBatch)
	for i := range frames {
		frames[i] = wire.Frame{Cmd: wire.CmdKeyGenerate, Body: req}
	}
	batch := func(c *client.Client) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			out, err := c.Send(ctx, benchEnclave, frames)
			if err != nil {
				return err
			}
			if len(out) != benchBatch {
				return errors.New("bench: batch answered with the wrong number of frames")
			}
			return checkGenerate(out[len(out)-1])
		}
	}
	b.Run("kmsledger", func(b *testing.B) { runParallel(b, benchBatch, "keys/s", batch(n.c)) })
	canned := cannedFrames(wire.CmdKeyGenerate, n.gen, benchBatch)
	n.s.Stop()
	b.Run("bare-mtls", func(b *testing.B) { runParallel(b, benchBatch, "keys/s", batch(bareServer(b, n.s, canned))) })
}
