package soak

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"aead.dev/mtls"
	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kms"
	"github.com/minio/kms-go/kms/cmds"
)

// Bounds the soak test states and checks.
const (
	attackers = 32        // hostile connections at any time
	rssBound  = 256 << 20 // the server's resident memory never exceeds this
)

// phase returns how long each phase runs: KMSLEDGER_SOAK_SECONDS (default
// 30) for the attack, a third of it (at least 5 s) for the baseline.
func phase() (baseline, attack time.Duration) {
	secs := 30
	if v, err := strconv.Atoi(os.Getenv("KMSLEDGER_SOAK_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	attack = time.Duration(secs) * time.Second
	return max(attack/3, 5*time.Second), attack
}

// TestSoakUnderAttack runs a legitimate kms-go client (GenerateKey then
// Decrypt, in a loop) against a real `kmsledger server --dev` process,
// first alone, then while 32 hostile connections send garbage, oversized,
// slow and unauthenticated requests. Every legitimate call must succeed,
// the server's resident memory must stay under rssBound, and /v1/health/live
// must answer afterwards. It reports the legitimate client's p99 latency
// in both phases.
func TestSoakUnderAttack(t *testing.T) {
	tmp := t.TempDir()
	bin, err := harness.BuildKMSLedger(tmp)
	if err != nil {
		t.Fatalf("build kmsledger: %v", err)
	}
	srv, err := harness.StartDev(bin, tmp)
	if err != nil {
		t.Fatalf("start kmsledger: %v", err)
	}
	defer func() {
		if t.Failed() {
			srv.DumpLogs(os.Stderr)
		}
		srv.Stop()
	}()
	env := srv.Env
	u, err := url.Parse(env.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	addr := u.Host

	ctx := harness.Context(t)
	legit := legitClient(t, env)
	const key = "soak-key"
	if err := env.Root.CreateKey(ctx, env.Enclave, &kms.CreateKeyRequest{Name: key}); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}

	mem := watchRSS(srv.Pid())
	defer mem.stop()

	baseDur, attackDur := phase()
	base := runLegit(ctx, legit, env.Enclave, key, baseDur)
	baseRSS := mem.peak()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var attacks atomic.Int64
	for i := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := mrand.New(mrand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			for {
				select {
				case <-stop:
					return
				default:
				}
				attack(addr, env.RootCAs, r)
				attacks.Add(1)
			}
		}()
	}
	under := runLegit(ctx, legit, env.Enclave, key, attackDur)
	close(stop)
	wg.Wait()
	peak := mem.peak()

	report := fmt.Sprintf("soak: baseline %d ok / %d failed, p50 %v p99 %v; under attack (%d hostile connections, %d attacks) %d ok / %d failed, p50 %v p99 %v; server RSS peak %.1f MiB baseline, %.1f MiB under attack (bound %d MiB)",
		base.ok, base.failed, base.pct(50), base.pct(99), attackers, attacks.Load(), under.ok, under.failed, under.pct(50), under.pct(99),
		float64(baseRSS)/(1<<20), float64(peak)/(1<<20), rssBound>>20)
	fmt.Println(report)
	t.Log(report)

	if base.failed > 0 || under.failed > 0 {
		t.Errorf("legitimate calls failed: %d in the baseline, %d under attack; first error: %v", base.failed, under.failed, firstErr(base, under))
	}
	if under.ok == 0 {
		t.Error("no legitimate call completed under attack")
	}
	if peak > rssBound {
		t.Errorf("server RSS peaked at %d MiB, bound %d MiB", peak>>20, rssBound>>20)
	}
	if err := env.Root.Live(ctx, &kms.LivenessRequest{}); err != nil {
		t.Errorf("Live after the attack: %v", err)
	}
}

// legitClient creates a User allowed to generate and decrypt with any key
// of the dev enclave and returns its kms-go client.
func legitClient(t *testing.T, env *harness.DevEnv) *kms.Client {
	ctx := harness.Context(t)
	k, err := mtls.GenerateKeyEdDSA(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	policy := &kms.CreatePolicyRequest{Name: "soak", Allow: map[cmds.Command]kms.RuleSet{cmds.KeyGenerate: {"*": {}}, cmds.KeyDecrypt: {"*": {}}}}
	if err := env.Root.CreatePolicy(ctx, env.Enclave, policy); err != nil {
		t.Fatalf("CreatePolicy: %v", err)
	}
	if err := env.Root.CreateIdentity(ctx, env.Enclave, &kms.CreateIdentityRequest{Identity: k.Identity(), Privilege: kms.User}); err != nil {
		t.Fatalf("CreateIdentity: %v", err)
	}
	if err := env.Root.AssignPolicy(ctx, env.Enclave, &kms.AssignPolicyRequest{Policy: "soak", Identity: k.Identity()}); err != nil {
		t.Fatalf("AssignPolicy: %v", err)
	}
	c, err := env.Client(k)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// result is what the legitimate client saw in one phase.
type result struct {
	ok, failed int
	err        error
	lat        []time.Duration
}

func (r *result) pct(p int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}

func firstErr(rs ...result) error {
	for _, r := range rs {
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

// runLegit generates and decrypts data keys for d, one call at a time,
// recording each call's latency.
func runLegit(ctx context.Context, c *kms.Client, enclave, key string, d time.Duration) result {
	var r result
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		start := time.Now()
		dks, err := c.GenerateKey(ctx, enclave, &kms.GenerateKeyRequest{Name: key, AssociatedData: []byte("soak")})
		r.lat = append(r.lat, time.Since(start))
		if err != nil {
			r.failed++
			r.err = cmpErr(r.err, fmt.Errorf("GenerateKey: %w", err))
			continue
		}
		dk := dks[0]
		start = time.Now()
		pts, err := c.Decrypt(ctx, enclave, &kms.DecryptRequest{Name: key, Ciphertext: dk.Ciphertext, AssociatedData: []byte("soak")})
		r.lat = append(r.lat, time.Since(start))
		switch {
		case err != nil:
			r.failed++
			r.err = cmpErr(r.err, fmt.Errorf("Decrypt: %w", err))
		case !bytes.Equal(pts[0].Plaintext, dk.Plaintext):
			r.failed++
			r.err = cmpErr(r.err, fmt.Errorf("Decrypt returned another plaintext"))
		default:
			r.ok += 2
		}
	}
	return r
}

func cmpErr(old, new error) error {
	if old != nil {
		return old
	}
	return new
}

// attack runs one hostile interaction against addr, chosen at random.
// Each ends within a few seconds whatever the server does.
func attack(addr string, roots *x509.CertPool, r *mrand.Rand) {
	switch r.IntN(8) {
	case 0: // garbage instead of a TLS handshake
		raw(addr, func(c net.Conn) {
			b := make([]byte, 1+r.IntN(4096))
			fillRandom(r, b)
			c.Write(b)
		})
	case 1: // a handshake that never finishes: hello, then silence
		raw(addr, func(c net.Conn) {
			c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03})
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			io.Copy(io.Discard, c)
		})
	case 2: // no certificate, a 1 MiB body announced, a trickle sent
		tlsConn(addr, roots, false, func(c *tls.Conn) {
			fmt.Fprintf(c, "POST /v1/kms HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", 1<<20-1)
			trickle(c, 3*time.Second)
		})
	case 3: // a random certificate, a 1 MiB body announced, a trickle sent
		tlsConn(addr, roots, true, func(c *tls.Conn) {
			fmt.Fprintf(c, "POST /v1/kms/minio HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", 1<<20-1)
			trickle(c, 3*time.Second)
		})
	case 4: // a path of 300,000 escaped '<' without a certificate
		tlsConn(addr, roots, false, func(c *tls.Conn) {
			fmt.Fprintf(c, "GET /v1/admin/x/keys/%s HTTP/1.1\r\nHost: x\r\n\r\n", strings.Repeat("%3C", 100_000+r.IntN(200_000)))
			drain(c)
		})
	case 5: // slow headers
		tlsConn(addr, roots, r.IntN(2) == 0, func(c *tls.Conn) {
			for _, b := range []byte("GET /v1/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ") {
				c.Write([]byte{b})
				time.Sleep(100 * time.Millisecond)
			}
		})
	case 6: // an oversized body sent at full speed by a random certificate
		tlsConn(addr, roots, true, func(c *tls.Conn) {
			n := 2 << 20
			fmt.Fprintf(c, "POST /v1/kms/minio HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", n)
			c.Write(make([]byte, n))
			drain(c)
		})
	default: // random kms frames from a random certificate
		tlsConn(addr, roots, true, func(c *tls.Conn) {
			b := make([]byte, 16+r.IntN(1024))
			fillRandom(r, b)
			fmt.Fprintf(c, "POST /v1/kms HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(b))
			c.Write(b)
			drain(c)
		})
	}
}

func fillRandom(r *mrand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// raw runs f on a plain TCP connection, closed after at most 5 s.
func raw(addr string, f func(net.Conn)) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		time.Sleep(50 * time.Millisecond)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	f(c)
}

// tlsConn runs f on a TLS connection without a client certificate or with
// a fresh self-signed one, closed after at most 5 s.
func tlsConn(addr string, roots *x509.CertPool, withCert bool, f func(*tls.Conn)) {
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if withCert {
		cert, err := selfSigned()
		if err != nil {
			return
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	d := &net.Dialer{Timeout: 2 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		time.Sleep(50 * time.Millisecond)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	f(c)
}

// trickle sends a byte every 100 ms for d, reading nothing.
func trickle(c net.Conn, d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if _, err := c.Write([]byte{0}); err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// drain reads the answer until the server closes or the deadline passes.
func drain(c net.Conn) {
	io.Copy(io.Discard, bufio.NewReader(c))
}

// selfSigned returns a fresh Ed25519 certificate signed by itself.
func selfSigned() (tls.Certificate, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

// rssWatch samples a process's resident memory every 100 ms.
type rssWatch struct {
	mu   sync.Mutex
	max  int64
	done chan struct{}
}

func watchRSS(pid int) *rssWatch {
	w := &rssWatch{done: make(chan struct{})}
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if n := rss(pid); n > 0 {
				w.mu.Lock()
				w.max = max(w.max, n)
				w.mu.Unlock()
			}
			select {
			case <-w.done:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *rssWatch) peak() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}

func (w *rssWatch) stop() { close(w.done) }

// rss reads VmRSS of pid from /proc, in bytes; 0 if unknown.
func rss(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}
