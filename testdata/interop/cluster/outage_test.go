package cluster

import (
	"crypto/rand"
	"errors"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"aead.dev/mtls"
	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
	"github.com/minio/kms-go/kms"
	"github.com/minio/kms-go/kms/cmds"
)

// status is the HTTP status of a kms-go error, 0 if it has none.
func status(err error) int {
	var e kms.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// TestClusterTwoDown kills two of three nodes (started with --staleness
// 60s): the survivor still decrypts and generates data keys, answers key
// creation with 503 and /v1/health/ready?write with 503; when one node
// returns, both work again.
func TestClusterTwoDown(t *testing.T) {
	c := newCluster(t, 3, "", "--staleness", "60s")
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	ctx := testCtx(t)
	key := harness.UniqueName("k")
	cl := c.client(n1)
	if err := cl.CreateKey(ctx, c.enclave, &kms.CreateKeyRequest{Name: key}); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	g, err := cl.GenerateKey(ctx, c.enclave, &kms.GenerateKeyRequest{Name: key, Length: 32})
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}

	c.kill(n2, n3)
	down := time.Now()

	d, err := cl.Decrypt(ctx, c.enclave, &kms.DecryptRequest{Name: key, Ciphertext: g[0].Ciphertext})
	if err != nil {
		t.Errorf("Decrypt on the survivor right after two nodes died: %v", err)
	} else if string(d[0].Plaintext) != string(g[0].Plaintext) {
		t.Error("Decrypt on the survivor returned another plaintext")
	}
	wctx, cancel := callCtx(50 * time.Second)
	err = cl.CreateKey(wctx, c.enclave, &kms.CreateKeyRequest{Name: harness.UniqueName("nomajority")})
	cancel()
	took := time.Since(down)
	if status(err) != http.StatusServiceUnavailable {
		t.Errorf("CreateKey without a majority: got %v, want 503", err)
	}
	figure(t, "two of three down: CreateKey answered %v after %v", err, took.Round(time.Millisecond))
	for _, cond := range []string{"write", "replicas"} {
		if code := c.health(n1, "/v1/health/ready?"+cond); code != http.StatusServiceUnavailable {
			t.Errorf("/v1/health/ready?%s without a majority: %d, want 503", cond, code)
		}
	}
	// Crypto still works within the staleness bound.
	if time.Since(down) < 55*time.Second {
		if err := roundTrip(ctx, cl, cl, c.enclave, key); err != nil {
			t.Errorf("GenerateKey+Decrypt on the survivor %v after two nodes died (staleness 60s): %v", time.Since(down).Round(time.Millisecond), err)
		}
		d, err := cl.Decrypt(ctx, c.enclave, &kms.DecryptRequest{Name: key, Ciphertext: g[0].Ciphertext})
		if err != nil || string(d[0].Plaintext) != string(g[0].Plaintext) {
			t.Errorf("Decrypt of the old ciphertext on the survivor %v after two nodes died: %v", time.Since(down).Round(time.Millisecond), err)
		}
	} else {
		t.Errorf("the 503 took %v: no time left to check crypto within the 60s staleness bound", took)
	}

	start := time.Now()
	c.restart(n2)
	if _, err := c.waitHealth(n1, "/v1/health/ready?write", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	figure(t, "one node back: %s ready?write %v after %s was started again", n1.name, time.Since(start).Round(time.Millisecond), n2.name)
	if _, err := c.waitHealth(n2, "/v1/health/ready?replicas", 60*time.Second); err != nil {
		t.Error(err)
	}
	figure(t, "one node back: its replicas current (ready?replicas) %v after it was started again", time.Since(start).Round(time.Millisecond))
	name := harness.UniqueName("back")
	if err := cl.CreateKey(ctx, c.enclave, &kms.CreateKeyRequest{Name: name}); err != nil {
		t.Errorf("CreateKey through %s with a majority again: %v", n1.name, err)
	}
	if err := roundTrip(ctx, cl, c.client(n2), c.enclave, name); err != nil {
		t.Errorf("GenerateKey through %s, Decrypt through %s: %v", n1.name, n2.name, err)
	}
	c.sameAuditEvents()
}

// newUser creates a User with a policy allowing GenerateKey and Decrypt on
// every key and returns its key.
func (c *cluster) newUser(t *testing.T, cl *kms.Client) mtls.PrivateKey {
	t.Helper()
	ctx := testCtx(t)
	k, err := mtls.GenerateKeyEdDSA(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	policy := harness.UniqueName("p")
	if err := cl.CreatePolicy(ctx, c.enclave, &kms.CreatePolicyRequest{Name: policy, Allow: map[cmds.Command]kms.RuleSet{cmds.KeyGenerate: {"*": {}}, cmds.KeyDecrypt: {"*": {}}}}); err != nil {
		t.Fatalf("CreatePolicy: %v", err)
	}
	if err := cl.CreateIdentity(ctx, c.enclave, &kms.CreateIdentityRequest{Identity: k.Identity(), Privilege: kms.User}); err != nil {
		t.Fatalf("CreateIdentity: %v", err)
	}
	if err := cl.AssignPolicy(ctx, c.enclave, &kms.AssignPolicyRequest{Policy: policy, Identity: k.Identity()}); err != nil {
		t.Fatalf("AssignPolicy: %v", err)
	}
	return k
}

// TestClusterRevocation deletes an identity, and a key, through
// node 1 and checks that node 3 refuses the identity (the key) on the very
// next request after the call returned (the call waits until every node
// applied it); it reports how long the deletion and node 3's refusal
// took.
func TestClusterRevocation(t *testing.T) {
	c := newCluster(t, 3, "")
	n1, n3 := c.nodes[0], c.nodes[2]
	ctx := testCtx(t)
	root1 := c.client(n1)
	key := harness.UniqueName("k")
	if err := root1.CreateKey(ctx, c.enclave, &kms.CreateKeyRequest{Name: key}); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	var lat, deletes []time.Duration
	for i := range 10 {
		user := c.newUser(t, root1)
		u3 := c.clientAs(user, n3)
		if err := roundTrip(ctx, u3, u3, c.enclave, key); err != nil {
			t.Fatalf("round %d: the new User through %s before the delete: %v", i, n3.name, err)
		}
		start := time.Now()
		if err := root1.DeleteIdentity(ctx, c.enclave, &kms.DeleteIdentityRequest{Identity: user.Identity()}); err != nil {
			t.Fatalf("DeleteIdentity through %s: %v", n1.name, err)
		}
		deletes = append(deletes, time.Since(start))
		start = time.Now()
		_, err := u3.GenerateKey(ctx, c.enclave, &kms.GenerateKeyRequest{Name: key, Length: 32})
		lat = append(lat, time.Since(start))
		if err == nil {
			t.Errorf("round %d: %s served the deleted identity on the next request after DeleteIdentity through %s returned", i, n3.name, n1.name)
		} else if s := status(err); s != http.StatusForbidden && s != http.StatusUnauthorized && s != http.StatusNotFound {
			t.Errorf("round %d: deleted identity through %s: %v, want a refusal (401/403/404)", i, n3.name, err)
		}
	}
	slices.Sort(lat)
	slices.Sort(deletes)
	figure(t, "identity deleted through n1 (the call returns once every node applied it: min %v median %v max %v); refused by n3 on the next request, answered in min %v median %v max %v (%d rounds)",
		deletes[0].Round(time.Microsecond), deletes[len(deletes)/2].Round(time.Microsecond), deletes[len(deletes)-1].Round(time.Microsecond),
		lat[0].Round(time.Microsecond), lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond), len(lat))

	// A deleted key.
	root3 := c.client(n3)
	if err := root1.DeleteKey(ctx, c.enclave, &kms.DeleteKeyRequest{Name: key}); err != nil {
		t.Fatalf("DeleteKey through %s: %v", n1.name, err)
	}
	start := time.Now()
	_, err := root3.GenerateKey(ctx, c.enclave, &kms.GenerateKeyRequest{Name: key, Length: 32})
	figure(t, "key deleted through n1: n3 answered the next GenerateKey in %v: %v", time.Since(start).Round(time.Microsecond), err)
	if err == nil {
		t.Errorf("%s generated a data key with a key deleted through %s on the next request", n3.name, n1.name)
	}
	c.sameAuditEvents()
}

// TestClusterWipedNode deletes a node's data dir and restarts it with the
// same HSM key and cluster key: it catches up by itself and serves the
// keys created before the wipe, old ciphertexts included.
func TestClusterWipedNode(t *testing.T) {
	c := newCluster(t, 3, "")
	n3 := c.nodes[2]
	ctx := testCtx(t)
	cl := c.client(c.nodes[0])
	type sealed struct {
		key           string
		plain, cipher []byte
	}
	var old []sealed
	for range 5 {
		key := harness.UniqueName("k")
		if err := cl.CreateKey(ctx, c.enclave, &kms.CreateKeyRequest{Name: key}); err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		g, err := cl.GenerateKey(ctx, c.enclave, &kms.GenerateKeyRequest{Name: key, Length: 32})
		if err != nil {
			t.Fatalf("GenerateKey: %v", err)
		}
		old = append(old, sealed{key, g[0].Plaintext, g[0].Ciphertext})
	}
	c.kill(n3)
	if err := os.RemoveAll(n3.dir); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.restart(n3)
	if _, err := c.waitHealth(n3, "/v1/health/ready", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	figure(t, "wiped node: ready %v after exec", time.Since(start).Round(time.Millisecond))
	c3 := c.client(n3)
	for _, s := range old {
		d, err := c3.Decrypt(ctx, c.enclave, &kms.DecryptRequest{Name: s.key, Ciphertext: s.cipher})
		if err != nil {
			t.Errorf("Decrypt of a ciphertext made before the wipe through the wiped %s: %v", n3.name, err)
		} else if string(d[0].Plaintext) != string(s.plain) {
			t.Errorf("Decrypt through the wiped %s returned another plaintext", n3.name)
		}
		if err := roundTrip(ctx, c3, c3, c.enclave, s.key); err != nil {
			t.Errorf("GenerateKey+Decrypt through the wiped %s: %v", n3.name, err)
		}
	}
	c.sameAuditEvents()
}
