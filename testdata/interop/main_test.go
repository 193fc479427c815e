package interop

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"testing"

	"aead.dev/mtls"
	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kms"
)

// env is the server every test talks to. TestMain sets it once before any
// test runs and never changes it afterwards; it is the only mutable package
// state.
var env *harness.DevEnv

func TestMain(m *testing.M) {
	os.Exit(harness.RunMain(m, "interop", func(e *harness.DevEnv) error {
		env = e
		return nil
	}))
}

// group runs named subtests of one behaviour group and prints a summary line
// with their counts when the parent test ends.
type group struct {
	t          *testing.T
	name       string
	pass, fail int
}

// newGroup starts a group of subtests under t.
func newGroup(t *testing.T, name string) *group {
	g := &group{t: t, name: name}
	t.Cleanup(func() {
		fmt.Printf("interop summary: %-14s %3d passed %3d failed\n", g.name, g.pass, g.fail)
	})
	return g
}

// run runs f as subtest name and counts the outcome.
func (g *group) run(name string, f func(t *testing.T)) {
	if g.t.Run(name, f) {
		g.pass++
	} else {
		g.fail++
	}
}

// ctx returns a context that ends with the test (harness.Context).
func ctx(t *testing.T) context.Context { return harness.Context(t) }

// newEnclave creates a fresh enclave as SysAdmin and returns its name.
func newEnclave(t *testing.T, prefix string) string {
	t.Helper()
	name := harness.UniqueName(prefix)
	if err := env.Root.CreateEnclave(ctx(t), &kms.CreateEnclaveRequest{Name: name}); err != nil {
		t.Fatalf("CreateEnclave(%s): %v", name, err)
	}
	return name
}

// newKey generates a fresh Ed25519 API key.
func newKey(t *testing.T) mtls.PrivateKey {
	t.Helper()
	k, err := mtls.GenerateKeyEdDSA(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// clientFor returns an SDK client that authenticates with key.
func clientFor(t *testing.T, key mtls.PrivateKey) *kms.Client {
	t.Helper()
	c, err := env.Client(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mustCreateKey creates a key as SysAdmin.
func mustCreateKey(t *testing.T, enclave, name string, typ kms.SecretKeyType) {
	t.Helper()
	if err := env.Root.CreateKey(ctx(t), enclave, &kms.CreateKeyRequest{Name: name, Type: typ}); err != nil {
		t.Fatalf("CreateKey(%s/%s): %v", enclave, name, err)
	}
}

// wantErr fails the test unless errors.Is(err, target).
func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// noErr fails the test if err is not nil.
func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
