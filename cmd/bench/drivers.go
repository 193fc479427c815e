package bench

// The two protocols a benchmark speaks: the kms API through api/client,
// and the KES API with a small JSON client of its own (the KES SDK is
// AGPL and stays out of this module).

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
)

// Operation names.
const (
	OpGenerate = "generate" // GenerateKey of a 32-byte data key
	OpDecrypt  = "decrypt"  // Decrypt of a data key
	OpCreate   = "create"   // create a new key (a ledger write)
	OpBatch    = "batch"    // one request of BatchSize GenerateKey frames (kms API only)
	// OpPair is GenerateKey then Decrypt of its ciphertext, on the
	// benchmark key (kms API only).
	OpPair = "pair"
	// OpPairRandom is OpPair on a key picked uniformly among
	// Config.Keys keys (kms API only): the data plane over a working
	// set, next to OpPair's one hot key.
	OpPairRandom = "pair-random"
)

// benchKey is the key every data-plane operation uses.
const benchKey = "bench-key"

// context of every data key, as MinIO sends it.
var benchContext = []byte(`{"bucket":"bucket/object"}`)

// driver speaks one protocol to one server.
type driver interface {
	// setup creates what the operations need (enclave, key) if missing
	// and returns the canned answers a bare server gives (capture).
	setup(ctx context.Context) (canned map[string][]byte, err error)
	// op returns the function of one operation.
	op(name string, batch int) (func(context.Context) error, error)
	close()
}

// Endpoint is where and how to reach a server.
type Endpoint struct {
	Addr     string         // host:port
	APIKey   string         // k1:... (its certificate is the client certificate)
	RootCAs  *x509.CertPool // nil: the system roots
	Insecure bool           // do not verify the server certificate
}

// kmsDriver speaks the kms API.
type kmsDriver struct {
	c       *client.Client
	enclave string
	ct      []byte  // a ciphertext of benchKey
	run     string  // unique per driver: names of created keys
	n       *uint64 // created keys
	keys    int     // OpPairRandom's working set (setup creates what is missing)
	spread  int     // the working set's enclaves (Config.Enclaves); 0: d.enclave alone
	warm    bool    // setup uses every key of the working set once
	workers int
	out     io.Writer
}

func newKMSDriver(e Endpoint, cfg Config) (*kmsDriver, error) {
	c, err := client.New(client.Config{Endpoints: []string{e.Addr}, APIKey: e.APIKey, RootCAs: e.RootCAs,
		InsecureSkipVerify: e.Insecure, Timeout: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	return &kmsDriver{c: c, enclave: cfg.Enclave, run: strconv.FormatInt(time.Now().UnixNano(), 36), n: new(uint64),
		keys: cfg.Keys, spread: cfg.Enclaves, warm: cfg.Warm, workers: cfg.Workers, out: cfg.Out}, nil
}

func (d *kmsDriver) close() { d.c.Close() }

func (d *kmsDriver) setup(ctx context.Context) (map[string][]byte, error) {
	if err := d.c.CreateEnclave(ctx, d.enclave); err != nil && !errors.Is(err, client.ErrEnclaveExists) {
		return nil, fmt.Errorf("create enclave %s: %w", d.enclave, err)
	}
	if err := d.c.CreateKey(ctx, d.enclave, benchKey, "", false); err != nil && !errors.Is(err, client.ErrKeyExists) {
		return nil, fmt.Errorf("create key %s: %w", benchKey, err)
	}
	gen, err := d.c.Send(ctx, d.enclave, []wire.Frame{generateFrame()})
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	var g wire.GenerateKeyResponse
	if len(gen) != 1 || g.UnmarshalProto(gen[0].Body) != nil {
		return nil, fmt.Errorf("generate key: unexpected answer")
	}
	d.ct = g.Ciphertext
	dec, err := d.c.Send(ctx, d.enclave, []wire.Frame{d.decryptFrame()})
	if err != nil || len(dec) != 1 {
		return nil, fmt.Errorf("decrypt: %v", err)
	}
	if err := d.createWorkingSet(ctx); err != nil {
		return nil, err
	}
	return map[string][]byte{
		strconv.Itoa(int(wire.CmdKeyGenerate)): wire.EncodeFrames(gen),
		strconv.Itoa(int(wire.CmdKeyDecrypt)):  wire.EncodeFrames(dec),
		strconv.Itoa(int(wire.CmdKeyCreate)):   nil,
	}, nil
}

func generateFrame() wire.Frame { return generateFrameOf(benchKey) }

func generateFrameOf(key string) wire.Frame {
	req := &wire.GenerateKeyRequest{Name: key, AssociatedData: benchContext, Length: 32}
	return wire.Frame{Cmd: wire.CmdKeyGenerate, Body: req.MarshalProto()}
}

func (d *kmsDriver) decryptFrame() wire.Frame {
	req := &wire.DecryptRequest{Name: benchKey, Ciphertext: d.ct, AssociatedData: benchContext}
	return wire.Frame{Cmd: wire.CmdKeyDecrypt, Body: req.MarshalProto()}
}

func (d *kmsDriver) op(name string, batch int) (func(context.Context) error, error) {
	send := func(frames []wire.Frame) func(context.Context) error {
		return func(ctx context.Context) error {
			out, err := d.c.Send(ctx, d.enclave, frames)
			if err == nil && len(out) != len(frames) {
				err = fmt.Errorf("%d answer frames for %d", len(out), len(frames))
			}
			return err
		}
	}
	switch name {
	case OpGenerate:
		return send([]wire.Frame{generateFrame()}), nil
	case OpDecrypt:
		return send([]wire.Frame{d.decryptFrame()}), nil
	case OpBatch:
		frames := make([]wire.Frame, max(batch, 1))
		for i := range frames {
			frames[i] = generateFrame()
		}
		return send(frames), nil
	case OpPair:
		return func(ctx context.Context) error { return d.pairIn(ctx, d.enclave, benchKey) }, nil
	case OpPairRandom:
		if d.keys <= 0 {
			return nil, errors.New("operation pair-random needs a working set of keys (--keys)")
		}
		return func(ctx context.Context) error { return d.pair(ctx, rand.IntN(d.keys)) }, nil
	case OpCreate:
		return func(ctx context.Context) error {
			n := atomic.AddUint64(d.n, 1)
			return d.c.CreateKey(ctx, d.enclave, "bench-"+d.run+"-"+strconv.FormatUint(n, 10), "", false)
		}, nil
	}
	return nil, fmt.Errorf("unknown operation %q", name)
}

// kesDriver speaks the KES API (spec: POST /v1/key/{create,generate,decrypt}/NAME, JSON).
type kesDriver struct {
	http *http.Client
	base string
	ct   []byte
	run  string
	n    *uint64
}

func newKESDriver(e Endpoint) (*kesDriver, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: e.RootCAs, InsecureSkipVerify: e.Insecure} //nolint:gosec // explicit opt-in
	if e.APIKey != "" {
		key, err := wire.ParseAPIKey(e.APIKey)
		if err != nil {
			return nil, err
		}
		cert, err := wire.ClientCertificate(key)
		if err != nil {
			return nil, err
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	}
	tr := &http.Transport{TLSClientConfig: tlsConf, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}
	return &kesDriver{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, base: "https://" + e.Addr,
		run: strconv.FormatInt(time.Now().UnixNano(), 36), n: new(uint64)}, nil
}

func (d *kesDriver) close() { d.http.CloseIdleConnections() }

// call posts body to path and returns the answer body.
func (d *kesDriver) call(ctx context.Context, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("POST %s: status %d: %s", path, resp.StatusCode, bytes.TrimSpace(out))
	}
	return out, nil
}

func (d *kesDriver) setup(ctx context.Context) (map[string][]byte, error) {
	if out, err := d.call(ctx, "/v1/key/create/"+benchKey, nil); err != nil && !bytes.Contains(out, []byte("already exists")) {
		return nil, err
	}
	gen, err := d.call(ctx, "/v1/key/generate/"+benchKey, mustJSON(map[string][]byte{"context": benchContext}))
	if err != nil {
		return nil, err
	}
	var g struct{ Ciphertext []byte }
	if err := json.Unmarshal(gen, &g); err != nil || len(g.Ciphertext) == 0 {
		return nil, fmt.Errorf("generate: unexpected answer %q", gen)
	}
	d.ct = g.Ciphertext
	dec, err := d.call(ctx, "/v1/key/decrypt/"+benchKey, d.decryptBody())
	if err != nil {
		return nil, err
	}
	return map[string][]byte{OpGenerate: gen, OpDecrypt: dec, OpCreate: nil}, nil
}

func (d *kesDriver) decryptBody() []byte {
	return mustJSON(map[string][]byte{"ciphertext": d.ct, "context": benchContext})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (d *kesDriver) op(name string, _ int) (func(context.Context) error, error) {
	post := func(path string, body []byte) func(context.Context) error {
		return func(ctx context.Context) error { _, err := d.call(ctx, path, body); return err }
	}
	switch name {
	case OpGenerate:
		return post("/v1/key/generate/"+benchKey, mustJSON(map[string][]byte{"context": benchContext})), nil
	case OpDecrypt:
		return post("/v1/key/decrypt/"+benchKey, d.decryptBody()), nil
	case OpCreate:
		return func(ctx context.Context) error {
			n := atomic.AddUint64(d.n, 1)
			_, err := d.call(ctx, "/v1/key/create/bench-"+d.run+"-"+strconv.FormatUint(n, 10), nil)
			return err
		}, nil
	}
	return nil, fmt.Errorf("operation %q is not part of the KES API", name)
}
