package transitinterop

import (
	"context"
	"fmt"
	"os"
	"testing"

	"aead.dev/mtls"
	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kms"
	"github.com/minio/kms-go/kms/cmds"
)

// enclave is the enclave `server --dev` serves at the mount "transit".
const enclave = "minio"

// env is the running server; TestMain sets it once.
var env *harness.DevEnv

func TestMain(m *testing.M) {
	os.Exit(harness.RunMain(m, "transit interop", func(e *harness.DevEnv) error {
		if e.Enclave != enclave {
			return fmt.Errorf("--dev enclave is %q, want %q", e.Enclave, enclave)
		}
		env = e
		return nil
	}))
}

func ctx(t *testing.T) context.Context { return harness.Context(t) }

// rootToken is the root API key: a Transit token as is.
func rootToken() string { return env.RootKey.String() }

// clients returns both SDKs' clients with token.
func clients(t *testing.T, token string) []client {
	t.Helper()
	v, err := newVault(env.Endpoint, env.CAFile, token)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newBao(env.Endpoint, env.CAFile, token)
	if err != nil {
		t.Fatal(err)
	}
	return []client{v, b}
}

// user makes an identity of the enclave whose policy allows cmds on every
// key and returns its API key as a token.
func user(t *testing.T, allow ...cmds.Command) (token string, id mtls.Identity) {
	t.Helper()
	key, err := mtls.GenerateKeyEdDSA(nil)
	if err != nil {
		t.Fatal(err)
	}
	rules := map[cmds.Command]kms.RuleSet{}
	for _, c := range allow {
		rules[c] = kms.RuleSet{"*": {}}
	}
	policy := harness.UniqueName("transit")
	if err := env.Root.CreatePolicy(ctx(t), enclave, &kms.CreatePolicyRequest{Name: policy, Allow: rules}); err != nil {
		t.Fatal(err)
	}
	if err := env.Root.CreateIdentity(ctx(t), enclave, &kms.CreateIdentityRequest{Identity: key.Identity(), Privilege: kms.User}); err != nil {
		t.Fatal(err)
	}
	if err := env.Root.AssignPolicy(ctx(t), enclave, &kms.AssignPolicyRequest{Identity: key.Identity(), Policy: policy}); err != nil {
		t.Fatal(err)
	}
	return key.String(), key.Identity()
}
