package minio

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kes"
)

// kesIdentity is a KES client identity: the hex SHA-256 of the SPKI of its
// certificate, and the kmsledger identity of the same hash.
type kesIdentity struct {
	hex string // KES form
	h1  string // kmsledger form: "h1:" + base64url of the same 32 bytes
}

// newKESIdentity returns both forms of a hex KES identity.
func newKESIdentity(t *testing.T, id string) kesIdentity {
	t.Helper()
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != sha256.Size {
		t.Fatalf("KES identity %q is not 32 hex-encoded bytes (%v)", id, err)
	}
	return kesIdentity{hex: id, h1: "h1:" + base64.RawURLEncoding.EncodeToString(b)}
}

// kesAPIKey is a kes:v1 API key (a secret) and its identity.
type kesAPIKey struct {
	key kes.APIKey
	id  kesIdentity
}

// newKESAPIKey makes a kes:v1 API key, as `kes identity new` does, and
// registers it with the redactor.
func (h *e2e) newKESAPIKey(t *testing.T) *kesAPIKey {
	t.Helper()
	k, err := kes.GenerateAPIKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h.red.Add(k.String())
	return &kesAPIKey{key: k, id: newKESIdentity(t, k.Identity().String())}
}

// client returns a KES SDK client that authenticates with the API key (a
// self-signed certificate, as MinIO does) and trusts only caFile.
func (k *kesAPIKey) client(t *testing.T, endpoint, caFile string) *kes.Client {
	t.Helper()
	cert, err := kes.GenerateCertificate(k.key)
	if err != nil {
		t.Fatal(err)
	}
	return kes.NewClientWithConfig(endpoint, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      certPool(t, caFile),
		Certificates: []tls.Certificate{cert},
	})
}

// certPool returns a pool holding the PEM certificates of file.
func certPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no PEM certificate", file)
	}
	return pool
}

// writeSelfSigned makes an ECDSA P-256 key and a self-signed certificate
// for usage (client or server auth; a server certificate is for 127.0.0.1),
// writes them as PEM to certFile and keyFile (0600) and returns the KES
// identity of the certificate.
func writeSelfSigned(t *testing.T, certFile, keyFile, cn string, usage x509.ExtKeyUsage) kesIdentity {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	for file, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return newKESIdentity(t, hex.EncodeToString(sum[:]))
}

// kesEnv is the environment of a MinIO in KES mode: endpoint, the CA file
// of its server certificate, the default key, and auth (the API key, or a
// certificate and key file).
func kesEnv(endpoint, caFile, keyName string, auth ...string) []string {
	return append([]string{
		"MINIO_KMS_KES_ENDPOINT=" + endpoint,
		"MINIO_KMS_KES_CAPATH=" + caFile,
		"MINIO_KMS_KES_KEY_NAME=" + keyName,
	}, auth...)
}

// kesServer is a real KES server with an fs key store.
type kesServer struct {
	bin, dir, config, keys, cert, addr, log string
	env                                     []string // the ${ENV} variables its config uses
	p                                       *harness.Proc
}

// kesConfig is a KES server config: TLS with its own
// certificate (client certificates are required but not verified, as by
// default), admin disabled, one policy for MinIO whose identity comes from
// ${KES_MINIO_IDENTITY}, and an fs key store.
const kesConfig = `# KES server config of the kmsledger interop test.
version: v1
address: %[1]s
admin:
  identity: disabled
tls:
  key: %[2]s
  cert: %[3]s
policy:
  minio:
    allow:
    - /v1/key/create/*
    - /v1/key/generate/*
    - /v1/key/decrypt/*
    - /v1/key/describe/*
    - /v1/key/list/*
    - /v1/key/hmac/*
    - /v1/status
    - /v1/metrics
    - /v1/api
    - /v1/log/audit
    - /v1/log/error
    identities:
    - ${KES_MINIO_IDENTITY}
keystore:
  fs:
    path: %[4]s
`

// newKESServer writes the certificate, key and config of a KES server that
// grants minio the policy "minio".
func (h *e2e) newKESServer(t *testing.T, bin string, minio kesIdentity) *kesServer {
	t.Helper()
	dir := filepath.Join(h.dir, "kes")
	s := &kesServer{
		bin: bin, dir: dir, config: filepath.Join(dir, "config.yml"), keys: filepath.Join(dir, "keys"),
		cert: filepath.Join(dir, "server.crt"), addr: freeAddr(t), log: filepath.Join(h.dir, "kes.log"),
		env: []string{"KES_MINIO_IDENTITY=" + minio.hex},
	}
	key := filepath.Join(dir, "server.key")
	writeSelfSigned(t, s.cert, key, "kes-interop", x509.ExtKeyUsageServerAuth)
	cfg := fmt.Sprintf(kesConfig, s.addr, key, s.cert, s.keys)
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h.logs = append(h.logs, s.log)
	return s
}

// endpoint is the URL MinIO and SDK clients use.
func (s *kesServer) endpoint() string { return "https://" + s.addr }

// start starts KES and waits until an SDK client authenticated as caller
// gets its version.
func (h *e2e) startKES(t *testing.T, s *kesServer, caller *kesAPIKey) {
	t.Helper()
	env := append(baseEnv(), s.env...)
	p, err := h.startProc(harness.ProcConfig{Name: "kes", Bin: s.bin, Args: []string{"server", "--config", s.config}, Env: env, Log: s.log})
	if err != nil {
		t.Fatal(err)
	}
	c := caller.client(t, s.endpoint(), s.cert)
	err = p.WaitReady(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Version(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("%v (its log is printed at the end)", err)
	}
	s.p = p
}

// keyFiles returns the names of the files in the KES fs key store.
func (s *kesServer) keyFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(s.keys)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
