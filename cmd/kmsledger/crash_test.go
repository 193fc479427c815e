package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/cmd/node"
	"github.com/kmsledger/kmsledger/hsm/softkey"
)

// buildBinary builds kmsledger once per test binary run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "kmsledger-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kmsledger")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// process is a kmsledger server running as a child process.
type process struct {
	cmd  *exec.Cmd
	addr string
	out  *strings.Builder
	mu   *sync.Mutex
}

// startProcess runs `kmsledger server DIR` with hsmKey in the environment
// and waits until it serves.
func startProcess(t *testing.T, dir, hsmKey string) *process {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "server", dir, "--address", "127.0.0.1:0", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "KMSLEDGER_HSM_KEY="+hsmKey)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, out: new(strings.Builder), mu: new(sync.Mutex)}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			p.mu.Unlock()
			if _, rest, ok := strings.Cut(line, "serving https://"); ok {
				addr <- strings.Fields(rest)[0]
			}
		}
	}()
	select {
	case p.addr = <-addr:
	case <-time.After(60 * time.Second):
		t.Fatal("server did not start")
	}
	return p
}

func (p *process) client(t *testing.T, dir, apiKey string) *client.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := client.New(client.Config{Endpoints: []string{p.addr}, APIKey: apiKey, RootCAs: roots, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newHSMKey returns a fresh software HSM key and the root API key a server
// derives from it.
func newHSMKey(t *testing.T) (hsmKey, rootKey string) {
	t.Helper()
	hsmKey, err := softkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := softkey.Parse(hsmKey)
	if err != nil {
		t.Fatal(err)
	}
	if rootKey, _, err = node.DeriveRootAPIKey(hk); err != nil {
		t.Fatal(err)
	}
	return hsmKey, rootKey
}

// TestKillDashNine: keys are created in a loop while the server is killed
// with SIGKILL; after a restart every key whose creation was acknowledged
// exists and decrypts what it encrypted before the crash.
func TestKillDashNine(t *testing.T) {
	dir := t.TempDir()
	hsmKey, rootKey := newHSMKey(t)
	ctx := context.Background()
	p := startProcess(t, dir, hsmKey)
	c := p.client(t, dir, rootKey)
	if err := c.CreateEnclave(ctx, "e1"); err != nil {
		t.Fatal(err)
	}

	keys := writeUntilKilled(t, p, c)

	p = startProcess(t, dir, hsmKey)
	c = p.client(t, dir, rootKey)
	created, decrypted := 0, 0
	for _, k := range keys {
		if k.ct == nil {
			created++
			if _, err := c.KeyStatus(ctx, "e1", k.name, 0); err != nil {
				t.Errorf("acknowledged key %s lost after kill -9: %v", k.name, err)
			}
			continue
		}
		d, err := c.Decrypt(ctx, "e1", k.name, 0, k.ct, []byte(k.name))
		if err != nil || string(d.Plaintext) != string(k.pt) {
			t.Errorf("Decrypt(%s) after kill -9 = %v, want the plaintext", k.name, err)
			continue
		}
		decrypted++
	}
	if created < 50 {
		t.Fatalf("only %d keys were acknowledged before the kill; the test proves little", created)
	}
	t.Logf("after kill -9: %d acknowledged keys present, %d ciphertexts decrypt", created, decrypted)
	if _, err := c.KeyStatus(ctx, "e1", "never-created", 0); !errors.Is(err, client.ErrKeyNotFound) {
		t.Fatalf("KeyStatus(never-created) err = %v, want ErrKeyNotFound", err)
	}
}

// ackedKey is a key whose creation the server acknowledged and, if ct is
// set, a plaintext it acknowledged encrypting under it.
type ackedKey struct {
	name   string
	ct, pt []byte
}

// writeUntilKilled creates keys in e1 from four writers, encrypting under
// each, until about 200 are acknowledged; then it kills p with SIGKILL
// and returns what was acknowledged.
func writeUntilKilled(t *testing.T, p *process, c *client.Client) []ackedKey {
	t.Helper()
	ctx := context.Background()
	var (
		mu   sync.Mutex
		keys []ackedKey
		wg   sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("k-%d-%d", w, i)
				if err := c.CreateKey(ctx, "e1", name, "", false); err != nil {
					return // the server is gone
				}
				mu.Lock()
				keys = append(keys, ackedKey{name: name})
				mu.Unlock()
				pt := []byte("secret of " + name)
				e, err := c.Encrypt(ctx, "e1", name, 0, pt, []byte(name))
				if err != nil {
					return
				}
				mu.Lock()
				keys = append(keys, ackedKey{name: name, ct: e.Ciphertext, pt: pt})
				mu.Unlock()
			}
		}()
	}
	// Let the writers run until a good number of keys is acknowledged.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(keys)
		mu.Unlock()
		if n >= 200 {
			break
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	p.cmd.Wait()
	c.Close()
	return keys
}
