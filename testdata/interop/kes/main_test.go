package kesinterop

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"testing"

	"aead.dev/mtls"
	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kes"
	"github.com/minio/kms-go/kms"
)

// kesEnclave is the enclave KES clients act in (`--kes-enclave`); --dev
// creates it.
const kesEnclave = "minio"

// env is the running server: its KES endpoint (the same listener as the kms
// API), the CA to trust, and a root kms client for set-up. TestMain sets it
// once before any test runs and never changes it.
var env *harness.DevEnv

func TestMain(m *testing.M) {
	os.Exit(harness.RunMain(m, "kes interop", func(e *harness.DevEnv) error {
		if e.Enclave != kesEnclave {
			return fmt.Errorf("--dev enclave is %q, want %q", e.Enclave, kesEnclave)
		}
		env = e
		return nil
	}, "--kes-enclave", kesEnclave))
}

// ctx returns a context that ends with the test (harness.Context).
func ctx(t *testing.T) context.Context { return harness.Context(t) }

// h1 converts a KES identity (hex SHA-256 of the SPKI) to the kmsledger
// identity of the same hash.
func h1(t *testing.T, id kes.Identity) mtls.Identity {
	t.Helper()
	b, err := hex.DecodeString(id.String())
	if err != nil {
		t.Fatalf("KES identity %q: %v", id, err)
	}
	m, err := mtls.ParseIdentity("h1:" + base64.RawURLEncoding.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// addIdentity adds a KES identity to the enclave through the kms API, as
// Admin, or as a User with policy.
func addIdentity(t *testing.T, id kes.Identity, priv kms.Privilege, policy string) {
	t.Helper()
	if err := env.Root.CreateIdentity(ctx(t), kesEnclave, &kms.CreateIdentityRequest{Identity: h1(t, id), Privilege: priv}); err != nil {
		t.Fatalf("CreateIdentity(%s): %v", id, err)
	}
	if policy == "" {
		return
	}
	if err := env.Root.AssignPolicy(ctx(t), kesEnclave, &kms.AssignPolicyRequest{Identity: h1(t, id), Policy: policy}); err != nil {
		t.Fatalf("AssignPolicy(%s, %s): %v", id, policy, err)
	}
}

// clientWithCert returns a KES SDK client presenting cert, configured as
// MinIO configures it (trusting only the server's CA).
func clientWithCert(cert tls.Certificate) *kes.Client {
	return kes.NewClientWithConfig(env.Endpoint, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      env.RootCAs,
		Certificates: []tls.Certificate{cert},
	})
}

// newAPIKeyClient makes a fresh kes:v1 API key and returns a client for it
// (the certificate the SDK derives from the key, as MINIO_KMS_KES_API_KEY
// does) and its identity. The key round-trips through its text form.
func newAPIKeyClient(t *testing.T) (*kes.Client, kes.Identity) {
	t.Helper()
	k, err := kes.GenerateAPIKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := kes.ParseAPIKey(k.String())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := kes.GenerateCertificate(key)
	if err != nil {
		t.Fatal(err)
	}
	return clientWithCert(cert), key.Identity()
}

// adminClient returns a client whose fresh identity is an Admin of the
// enclave.
func adminClient(t *testing.T) (*kes.Client, kes.Identity) {
	t.Helper()
	c, id := newAPIKeyClient(t)
	addIdentity(t, id, kms.Admin, "")
	return c, id
}
