package api_test

import (
	"crypto/rand"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/projections"
)

// idemFixture is a node with enclaves e1 and e2 and what the idempotency
// tests observe: the ledger head and the SECRETS references.
type idemFixture struct {
	t    *testing.T
	s    *stack
	root *client.Client
}

func newIdemFixture(t *testing.T) *idemFixture {
	t.Helper()
	s := newStack(t)
	f := &idemFixture{t: t, s: s, root: s.client("")}
	mustOK(t, f.root.CreateEnclave(ctx, "e1"))
	mustOK(t, f.root.CreateEnclave(ctx, "e2"))
	return f
}

func (f *idemFixture) head() uint64 {
	f.t.Helper()
	h, err := f.s.Store.Head(ctx)
	mustOK(f.t, err)
	return h
}

func (f *idemFixture) secrets() []string {
	f.t.Helper()
	refs, err := f.s.Store.ListSecrets(ctx, "")
	mustOK(f.t, err)
	return refs
}

// liveRefs returns the references the projection's key versions name.
func (f *idemFixture) liveRefs() []string {
	var refs []string
	f.s.Proj.View(func(st *projections.State) {
		for _, e := range st.Enclaves {
			for _, k := range e.Keys {
				for _, v := range k.Versions() {
					refs = append(refs, v.SecretRef(e.Name, k.Name))
				}
			}
		}
	})
	slices.Sort(refs)
	return refs
}

// checkNothingLeft fails unless SECRETS holds exactly the material that
// live key versions reference.
func (f *idemFixture) checkNothingLeft() {
	f.t.Helper()
	if got, want := f.secrets(), f.liveRefs(); !slices.Equal(got, want) {
		f.t.Fatalf("SECRETS holds %q, live versions reference %q", got, want)
	}
}

func (f *idemFixture) importKey(c *client.Client, enclave, name, id string, material []byte) (*wire.KeyImportResponse, error) {
	return c.ImportKeyWithSource(ctx, enclave, name, &wire.KeyImportRequest{Type: "AES256", Key: material, CommandID: id})
}

func newMaterial(t *testing.T) []byte {
	t.Helper()
	m := make([]byte, 32)
	_, err := rand.Read(m)
	mustOK(t, err)
	return m
}

// roundTrip encrypts and decrypts under enclave/name and fails unless the
// plaintext comes back.
func roundTrip(t *testing.T, c *client.Client, enclave, name string) {
	t.Helper()
	e, err := c.Encrypt(ctx, enclave, name, 0, []byte("hello"), nil)
	mustOK(t, err)
	d, err := c.Decrypt(ctx, enclave, name, 0, e.Ciphertext, nil)
	if err != nil || string(d.Plaintext) != "hello" {
		t.Fatalf("Decrypt(%s/%s) = %q, %v", enclave, name, d, err)
	}
}

// TestAdminImportCommandIDScopedToKey: a command id reused for another key
// is a new import; replayed for the same key it answers what the first
// import answered, writes nothing and leaves a's material as it was.
func TestAdminImportCommandIDScopedToKey(t *testing.T) {
	f := newIdemFixture(t)
	ma, mb := newMaterial(t), newMaterial(t)

	r, err := f.importKey(f.root, "e1", "a", "X", ma)
	if err != nil || r.Result != "imported" || r.Version != 1 || r.Replayed {
		t.Fatalf("import a with X = %+v, %v; want imported v1", r, err)
	}
	ctA, err := f.root.Encrypt(ctx, "e1", "a", 0, []byte("made before"), nil)
	mustOK(t, err)

	r, err = f.importKey(f.root, "e1", "b", "X", mb)
	if err != nil || r.Result != "imported" || r.Version != 1 || r.Replayed {
		t.Fatalf("import b with X = %+v, %v; want imported v1 (a new command)", r, err)
	}
	info, err := f.root.KeyInfo(ctx, "e1", "b")
	if err != nil || len(info.Versions) != 1 || info.Versions[0].Fingerprint == "" {
		t.Fatalf("KeyInfo(b) = %+v, %v", info, err)
	}
	roundTrip(t, f.root, "e1", "b")
	f.checkNothingLeft()

	head, refs := f.head(), f.secrets()
	r, err = f.importKey(f.root, "e1", "a", "X", ma)
	if err != nil || r.Result != "imported" || r.Version != 1 || !r.Replayed {
		t.Fatalf("replayed import a with X = %+v, %v; want imported v1, replayed", r, err)
	}
	if h := f.head(); h != head {
		t.Errorf("replay moved the ledger head from %d to %d", head, h)
	}
	if got := f.secrets(); !slices.Equal(got, refs) {
		t.Errorf("replay changed SECRETS from %q to %q", refs, got)
	}
	d, err := f.root.Decrypt(ctx, "e1", "a", 0, ctA.Ciphertext, nil)
	if err != nil || string(d.Plaintext) != "made before" {
		t.Fatalf("Decrypt(a, ciphertext made before the replay) = %v, %v", d, err)
	}

	// X for a with other material is not a replay of the first import:
	// refused, nothing written, a unchanged.
	_, err = f.importKey(f.root, "e1", "a", "X", mb)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusConflict || !strings.Contains(ce.Message, "command id") {
		t.Fatalf("import a with X and other material err = %v, want 409 command id already used", err)
	}
	if h := f.head(); h != head {
		t.Errorf("refused reuse moved the ledger head from %d to %d", head, h)
	}
	if got := f.secrets(); !slices.Equal(got, refs) {
		t.Errorf("refused reuse changed SECRETS from %q to %q", refs, got)
	}
	d, err = f.root.Decrypt(ctx, "e1", "a", 0, ctA.Ciphertext, nil)
	if err != nil || string(d.Plaintext) != "made before" {
		t.Fatalf("Decrypt(a) after refused reuse = %v, %v", d, err)
	}
}

// TestAdminImportCommandIDAcrossEnclaves: the same id and name in two
// enclaves are two imports.
func TestAdminImportCommandIDAcrossEnclaves(t *testing.T) {
	f := newIdemFixture(t)
	m1, m2 := newMaterial(t), newMaterial(t)
	for _, x := range []struct {
		enclave string
		m       []byte
	}{{"e1", m1}, {"e2", m2}} {
		r, err := f.importKey(f.root, x.enclave, "k", "same-id", x.m)
		if err != nil || r.Result != "imported" || r.Replayed {
			t.Fatalf("import %s/k with same-id = %+v, %v; want imported", x.enclave, r, err)
		}
		roundTrip(t, f.root, x.enclave, "k")
	}
	i1, err1 := f.root.KeyInfo(ctx, "e1", "k")
	i2, err2 := f.root.KeyInfo(ctx, "e2", "k")
	if err1 != nil || err2 != nil || i1.Versions[0].Fingerprint == i2.Versions[0].Fingerprint {
		t.Fatalf("KeyInfo e1/k = %+v, %v; e2/k = %+v, %v: want two keys with their own material", i1, err1, i2, err2)
	}
	f.checkNothingLeft()
}

// TestKeyCreateAfterFailedImports: neither refused imports nor sealed
// material left behind by an earlier version or a crashed attempt block a
// later KEY:CREATE of the name.
func TestKeyCreateAfterFailedImports(t *testing.T) {
	f := newIdemFixture(t)
	_, err := f.importKey(f.root, "e1", "a", "X", newMaterial(t))
	mustOK(t, err)

	// Refused: X was used for a with other material. Then a short key.
	if _, err := f.importKey(f.root, "e1", "a", "X", newMaterial(t)); err == nil {
		t.Fatal("reuse of X for a with other material succeeded")
	}
	if _, err := f.importKey(f.root, "e1", "c", "Y", []byte("short")); err == nil {
		t.Fatal("import of 5 bytes succeeded")
	}
	f.checkNothingLeft()

	// Material stored by an attempt that never appended its event: under
	// the layout of earlier releases (what their duplicate imports left)
	// and under an attempt reference.
	mustOK(t, f.s.Store.PutSecret(ctx, ledger.SecretRef("e1", "c", 1), []byte("stale")))
	mustOK(t, f.s.Store.PutSecret(ctx, ledger.AttemptSecretRef("e1", "c", 1, "crashed"), []byte("stale")))
	mustOK(t, f.root.CreateKey(ctx, "e1", "c", "", false))
	roundTrip(t, f.root, "e1", "c")
	mustOK(t, f.root.CreateKey(ctx, "e1", "c", "", true)) // version 2
	roundTrip(t, f.root, "e1", "c")

	// Reconcile (at the next start) erases what nothing references.
	s := f.s.restart()
	f.s = s
	f.checkNothingLeft()
}

// TestAdminImportCommandIDHostile: an invalid command id is a 400 and an
// Admin of another enclave cannot use (or probe) an id of e1; neither
// writes anything.
func TestAdminImportCommandIDHostile(t *testing.T) {
	f := newIdemFixture(t)
	m := newMaterial(t)
	_, err := f.importKey(f.root, "e1", "a", "X", m)
	mustOK(t, err)
	head, refs := f.head(), f.secrets()

	for _, id := range []string{"has space", "ctl\x01", strings.Repeat("x", 257), "non-ascii-\u00e9"} {
		_, err := f.importKey(f.root, "e1", "b", id, m)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusBadRequest {
			t.Errorf("import with command id %q err = %v, want 400", id, err)
		}
	}
	for _, name := range []string{"a.b", "bad*name", "bad>", "_", strings.Repeat("n", 81)} {
		_, err := f.importKey(f.root, "e1", name, "X", m)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusBadRequest {
			t.Errorf("import of key %q with a command id err = %v, want 400", name, err)
		}
	}
	if h, got := f.head(), f.secrets(); h != head || !slices.Equal(got, refs) {
		t.Errorf("invalid ids or names wrote: head %d -> %d, SECRETS %q -> %q", head, h, refs, got)
	}

	adminKey, adminID := newIdentity(t)
	mustOK(t, f.root.CreateIdentity(ctx, "e2", &wire.CreateIdentityRequest{Identity: adminID, Privilege: "Admin"}))
	head, refs = f.head(), f.secrets()
	other := f.s.client(adminKey)
	if _, err := f.importKey(other, "e1", "a", "X", m); !errors.Is(err, client.ErrPermission) {
		t.Errorf("e2 Admin importing into e1 with e1's id err = %v, want ErrPermission", err)
	}
	if _, err := f.importKey(other, "e1", "z", "X", m); !errors.Is(err, client.ErrPermission) {
		t.Errorf("e2 Admin importing a new key into e1 err = %v, want ErrPermission", err)
	}
	// In its own enclave the same id is its own command.
	r, err := f.importKey(other, "e2", "a", "X", m)
	if err != nil || r.Result != "imported" || r.Replayed {
		t.Fatalf("e2 Admin import e2/a with X = %+v, %v; want imported", r, err)
	}
	if h := f.head(); h != head+1 {
		t.Errorf("ledger head %d, want %d (one import)", h, head+1)
	}
	if got := f.secrets(); len(got) != len(refs)+1 {
		t.Errorf("SECRETS %q, want %q plus one", got, refs)
	}
	f.checkNothingLeft()
}
