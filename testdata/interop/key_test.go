package interop

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/kms-go/kms"
)

// TestKeys covers KEY:CREATE, KEY:DELETE, KEY:IMPORT (203) and KEY:STATUS.
func TestKeys(t *testing.T) {
	g := newGroup(t, "keys")
	enc := newEnclave(t, "keys")
	start := time.Now()

	for _, tc := range []struct {
		name string
		typ  kms.SecretKeyType
	}{
		{"key-aes", kms.AES256},
		{"key-chacha", kms.ChaCha20},
		{"key-default", 0},
	} {
		g.run("CreateKey type "+typeName(tc.typ), func(t *testing.T) {
			noErr(t, "CreateKey", env.Root.CreateKey(ctx(t), enc, &kms.CreateKeyRequest{Name: tc.name, Type: tc.typ}))
			resp, err := env.Root.KeyStatus(ctx(t), enc, &kms.KeyStatusRequest{Name: tc.name})
			noErr(t, "KeyStatus", err)
			s := resp[0]
			if s.Name != tc.name || s.Version != 1 {
				t.Errorf("got name %q version %d, want %q version 1", s.Name, s.Version, tc.name)
			}
			if tc.typ != 0 && s.Type != tc.typ {
				t.Errorf("got type %v, want %v", s.Type, tc.typ)
			}
			if s.Type != kms.AES256 && s.Type != kms.ChaCha20 {
				t.Errorf("got type %v, want AES256 or ChaCha20", s.Type)
			}
			if s.CreatedBy != env.RootKey.Identity() {
				t.Errorf("CreatedBy = %v, want %v", s.CreatedBy, env.RootKey.Identity())
			}
			checkCreatedAt(t, tc.name, s.CreatedAt, start)
		})
	}
	g.run("CreateKey again is ErrKeyExists", func(t *testing.T) {
		err := env.Root.CreateKey(ctx(t), enc, &kms.CreateKeyRequest{Name: "key-aes"})
		wantErr(t, err, kms.ErrKeyExists)
	})
	g.run("KeyStatus batch answers in order", func(t *testing.T) {
		names := []string{"key-chacha", "key-aes", "key-default"}
		reqs := make([]*kms.KeyStatusRequest, len(names))
		for i, n := range names {
			reqs[i] = &kms.KeyStatusRequest{Name: n}
		}
		resp, err := env.Root.KeyStatus(ctx(t), enc, reqs...)
		noErr(t, "KeyStatus", err)
		if len(resp) != len(names) {
			t.Fatalf("got %d responses, want %d", len(resp), len(names))
		}
		for i, r := range resp {
			if r.Name != names[i] {
				t.Errorf("response %d is %q, want %q", i, r.Name, names[i])
			}
		}
	})
	g.run("KeyStatus of unknown key is ErrKeyNotFound", func(t *testing.T) {
		_, err := env.Root.KeyStatus(ctx(t), enc, &kms.KeyStatusRequest{Name: "no-such-key"})
		wantErr(t, err, kms.ErrKeyNotFound)
	})
	g.run("GenerateKey with unknown key is ErrKeyNotFound", func(t *testing.T) {
		_, err := env.Root.GenerateKey(ctx(t), enc, &kms.GenerateKeyRequest{Name: "no-such-key"})
		wantErr(t, err, kms.ErrKeyNotFound)
	})

	for _, typ := range []kms.SecretKeyType{kms.AES256, kms.ChaCha20} {
		name := "imported-" + strings.ToLower(typ.String())
		g.run("ImportKey "+typ.String(), func(t *testing.T) {
			key := make([]byte, 32)
			_, _ = rand.Read(key)
			noErr(t, "ImportKey", env.Root.ImportKey(ctx(t), enc, &kms.ImportKeyRequest{Name: name, Type: typ, Key: key}))
			resp, err := env.Root.KeyStatus(ctx(t), enc, &kms.KeyStatusRequest{Name: name})
			noErr(t, "KeyStatus", err)
			if resp[0].Type != typ || resp[0].Version != 1 {
				t.Errorf("got type %v version %d, want %v version 1", resp[0].Type, resp[0].Version, typ)
			}
			roundTrip(t, enc, name, []byte("imported"))
		})
		g.run("ImportKey again is ErrKeyExists "+typ.String(), func(t *testing.T) {
			key := make([]byte, 32)
			_, _ = rand.Read(key)
			err := env.Root.ImportKey(ctx(t), enc, &kms.ImportKeyRequest{Name: name, Type: typ, Key: key})
			wantErr(t, err, kms.ErrKeyExists)
		})
	}
	g.run("imported AES256 key decrypts MinIO built-in KMS ciphertext", func(t *testing.T) {
		master := make([]byte, 32)
		_, _ = rand.Read(master)
		noErr(t, "ImportKey", env.Root.ImportKey(ctx(t), enc, &kms.ImportKeyRequest{Name: "migrated", Type: kms.AES256, Key: master}))
		ad := []byte(`{"bucket":"bucket/object"}`)
		dataKey := make([]byte, 32)
		_, _ = rand.Read(dataKey)
		dec, err := env.Root.Decrypt(ctx(t), enc, &kms.DecryptRequest{Name: "migrated", Ciphertext: sealBuiltin(t, master, dataKey, ad), AssociatedData: ad})
		noErr(t, "Decrypt", err)
		if !bytes.Equal(dec[0].Plaintext, dataKey) {
			t.Fatal("Decrypt returned a different data key")
		}
	})
	g.run("ImportKey with a 16-byte AES256 key fails", func(t *testing.T) {
		err := env.Root.ImportKey(ctx(t), enc, &kms.ImportKeyRequest{Name: "imported-short", Type: kms.AES256, Key: make([]byte, 16)})
		if err == nil {
			t.Fatal("ImportKey of a 16-byte AES256 key succeeded")
		}
	})

	g.run("CreateKey AddVersion rotates and old ciphertext still decrypts with Version 0", func(t *testing.T) {
		mustCreateKey(t, enc, "rotated", kms.AES256)
		ad := []byte(`{"bucket":"bucket/object"}`)
		old, err := env.Root.GenerateKey(ctx(t), enc, &kms.GenerateKeyRequest{Name: "rotated", AssociatedData: ad})
		noErr(t, "GenerateKey v1", err)
		noErr(t, "CreateKey AddVersion", env.Root.CreateKey(ctx(t), enc, &kms.CreateKeyRequest{Name: "rotated", AddVersion: true}))
		st, err := env.Root.KeyStatus(ctx(t), enc, &kms.KeyStatusRequest{Name: "rotated"})
		noErr(t, "KeyStatus", err)
		if st[0].Version != 2 {
			t.Fatalf("latest version after rotation = %d, want 2", st[0].Version)
		}
		fresh, err := env.Root.GenerateKey(ctx(t), enc, &kms.GenerateKeyRequest{Name: "rotated", AssociatedData: ad})
		noErr(t, "GenerateKey v2", err)
		if old[0].Version != 1 || fresh[0].Version != 2 {
			t.Errorf("GenerateKey versions = %d then %d, want 1 then 2", old[0].Version, fresh[0].Version)
		}
		dec, err := env.Root.Decrypt(ctx(t), enc,
			&kms.DecryptRequest{Name: "rotated", Ciphertext: old[0].Ciphertext, AssociatedData: ad},
			&kms.DecryptRequest{Name: "rotated", Ciphertext: fresh[0].Ciphertext, AssociatedData: ad})
		noErr(t, "Decrypt", err)
		if !bytes.Equal(dec[0].Plaintext, old[0].Plaintext) || !bytes.Equal(dec[1].Plaintext, fresh[0].Plaintext) {
			t.Fatal("Decrypt with Version 0 after rotation returned wrong plaintexts")
		}
	})
	g.run("DeleteKey one version", func(t *testing.T) {
		mustCreateKey(t, enc, "versioned", kms.AES256)
		v1, err := env.Root.GenerateKey(ctx(t), enc, &kms.GenerateKeyRequest{Name: "versioned"})
		noErr(t, "GenerateKey v1", err)
		if v1[0].Version != 1 {
			t.Fatalf("GenerateKey used version %d, want 1", v1[0].Version)
		}
		for range 2 {
			noErr(t, "CreateKey AddVersion", env.Root.CreateKey(ctx(t), enc, &kms.CreateKeyRequest{Name: "versioned", AddVersion: true}))
		}

		noErr(t, "DeleteKey v2", env.Root.DeleteKey(ctx(t), enc, &kms.DeleteKeyRequest{Name: "versioned", Version: 2}))
		_, err = env.Root.KeyStatus(ctx(t), enc, &kms.KeyStatusRequest{Name: "versioned", Version: 2})
		wantErr(t, err, kms.ErrKeyNotFound)
		wantLatest(t, enc, "versioned", 3)

		noErr(t, "DeleteKey latest", env.Root.DeleteKey(ctx(t), enc, &kms.DeleteKeyRequest{Name: "versioned"}))
		wantLatest(t, enc, "versioned", 1)

		noErr(t, "DeleteKey v1", env.Root.DeleteKey(ctx(t), enc, &kms.DeleteKeyRequest{Name: "versioned", Version: 1}))
		_, err = env.Root.Decrypt(ctx(t), enc, &kms.DecryptRequest{Name: "versioned", Ciphertext: v1[0].Ciphertext})
		if err == nil {
			t.Fatal("Decrypt of a deleted version's ciphertext succeeded")
		}
	})
	g.run("DeleteKey all versions, then ErrKeyNotFound", func(t *testing.T) {
		mustCreateKey(t, enc, "doomed", kms.ChaCha20)
		noErr(t, "CreateKey AddVersion", env.Root.CreateKey(ctx(t), enc, &kms.CreateKeyRequest{Name: "doomed", AddVersion: true}))
		noErr(t, "DeleteKey", env.Root.DeleteKey(ctx(t), enc, &kms.DeleteKeyRequest{Name: "doomed", AllVersions: true}))
		_, err := env.Root.KeyStatus(ctx(t), enc, &kms.KeyStatusRequest{Name: "doomed"})
		wantErr(t, err, kms.ErrKeyNotFound)
		_, err = env.Root.GenerateKey(ctx(t), enc, &kms.GenerateKeyRequest{Name: "doomed"})
		wantErr(t, err, kms.ErrKeyNotFound)
		err = env.Root.DeleteKey(ctx(t), enc, &kms.DeleteKeyRequest{Name: "doomed", AllVersions: true})
		wantErr(t, err, kms.ErrKeyNotFound)
	})
	g.run("DeleteKey of unknown key is ErrKeyNotFound", func(t *testing.T) {
		err := env.Root.DeleteKey(ctx(t), enc, &kms.DeleteKeyRequest{Name: "never-was"})
		wantErr(t, err, kms.ErrKeyNotFound)
	})
}

// TestListKeys covers KEY:LIST pagination over more than one page.
func TestListKeys(t *testing.T) {
	g := newGroup(t, "list-keys")
	enc := newEnclave(t, "list")
	const n = 250
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("page-%03d", i)
	}

	g.run(fmt.Sprintf("create %d keys", n), func(t *testing.T) {
		createKeys(t, enc, want)
		mustCreateKey(t, enc, "other-key", kms.AES256)
	})
	for _, limit := range []int{7, 100, 0} {
		g.run(fmt.Sprintf("Iter with Limit %d returns every name once, sorted", limit), func(t *testing.T) {
			pages := 0
			next := func(c context.Context, req *kms.ListRequest) (*kms.Page[kms.KeyStatusResponse], error) {
				pages++
				p, err := env.Root.ListKeys(c, req)
				if err == nil && limit > 0 && len(p.Items) > limit {
					t.Errorf("page of %d items exceeds Limit %d", len(p.Items), limit)
				}
				return p, err
			}
			got := listAll(t, next, &kms.ListRequest{Enclave: enc, Prefix: "page-", Limit: limit},
				func(k kms.KeyStatusResponse) string { return k.Name })
			if !slices.Equal(got, want) {
				t.Fatalf("listed %d names (%s), want %d names page-000..page-%03d", len(got), summarize(got), n, n-1)
			}
			if limit > 0 && pages < (n+limit-1)/limit {
				t.Errorf("fetched %d pages, want at least %d", pages, (n+limit-1)/limit)
			}
		})
	}
	g.run("ListKeys prefix page-1 gives page-100..page-199", func(t *testing.T) {
		got := listAll(t, env.Root.ListKeys, &kms.ListRequest{Enclave: enc, Prefix: "page-1", Limit: 30},
			func(k kms.KeyStatusResponse) string { return k.Name })
		if !slices.Equal(got, want[100:200]) {
			t.Fatalf("listed %s, want page-100..page-199", summarize(got))
		}
	})
	g.run("ListKeys ContinueAt is inclusive and ContinueAt names the next page", func(t *testing.T) {
		page, err := env.Root.ListKeys(ctx(t), &kms.ListRequest{Enclave: enc, Prefix: "page-", ContinueAt: "page-200", Limit: 5})
		noErr(t, "ListKeys", err)
		names := make([]string, len(page.Items))
		for i, k := range page.Items {
			names[i] = k.Name
		}
		if !slices.Equal(names, want[200:205]) {
			t.Fatalf("page = %v, want %v", names, want[200:205])
		}
		if page.ContinueAt != "page-205" {
			t.Fatalf("ContinueAt = %q, want %q", page.ContinueAt, "page-205")
		}
	})
	g.run("ListKeys last page has empty ContinueAt", func(t *testing.T) {
		page, err := env.Root.ListKeys(ctx(t), &kms.ListRequest{Enclave: enc, Prefix: "page-", ContinueAt: "page-245", Limit: 10})
		noErr(t, "ListKeys", err)
		if len(page.Items) != 5 || page.ContinueAt != "" {
			t.Fatalf("got %d items and ContinueAt %q, want 5 items and \"\"", len(page.Items), page.ContinueAt)
		}
	})
	g.run("ListKeys ContinueAt outside prefix gives an empty page", func(t *testing.T) {
		page, err := env.Root.ListKeys(ctx(t), &kms.ListRequest{Enclave: enc, Prefix: "page-", ContinueAt: "other-key"})
		noErr(t, "ListKeys", err)
		if len(page.Items) != 0 {
			t.Fatalf("got %d items, want none", len(page.Items))
		}
	})
	g.run("ListKeys items carry valid status", func(t *testing.T) {
		page, err := env.Root.ListKeys(ctx(t), &kms.ListRequest{Enclave: enc, Prefix: "page-00", Limit: 3})
		noErr(t, "ListKeys", err)
		for _, k := range page.Items {
			if k.Version != 1 || k.Type != kms.AES256 || k.CreatedBy != env.RootKey.Identity() {
				t.Errorf("%s: version %d type %v createdBy %v, want 1 AES256 %v", k.Name, k.Version, k.Type, k.CreatedBy, env.RootKey.Identity())
			}
		}
	})
}

// createKeys creates AES256 keys with a few concurrent workers.
func createKeys(t *testing.T, enc string, names []string) {
	t.Helper()
	const workers = 8
	work := make(chan string)
	errs := make(chan error, len(names))
	c := ctx(t)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for name := range work {
				if err := env.Root.CreateKey(c, enc, &kms.CreateKeyRequest{Name: name, Type: kms.AES256}); err != nil {
					errs <- fmt.Errorf("CreateKey(%s): %w", name, err)
				}
			}
		})
	}
	for _, name := range names {
		work <- name
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// wantLatest fails unless the latest version of the key is version.
func wantLatest(t *testing.T, enc, name string, version int) {
	t.Helper()
	st, err := env.Root.KeyStatus(ctx(t), enc, &kms.KeyStatusRequest{Name: name})
	noErr(t, "KeyStatus", err)
	if st[0].Version != version {
		t.Fatalf("latest version of %s = %d, want %d", name, st[0].Version, version)
	}
}

// roundTrip generates a data key and encrypts a message with the key, then
// decrypts both with Version 0.
func roundTrip(t *testing.T, enc, name string, msg []byte) {
	t.Helper()
	ad := []byte(`{"k":"v"}`)
	gen, err := env.Root.GenerateKey(ctx(t), enc, &kms.GenerateKeyRequest{Name: name, AssociatedData: ad})
	noErr(t, "GenerateKey", err)
	ct, err := encryptRaw(ctx(t), env.Root, enc, &kms.EncryptRequest{Name: name, Plaintext: msg, AssociatedData: ad})
	noErr(t, "Encrypt", err)
	dec, err := env.Root.Decrypt(ctx(t), enc,
		&kms.DecryptRequest{Name: name, Ciphertext: gen[0].Ciphertext, AssociatedData: ad},
		&kms.DecryptRequest{Name: name, Ciphertext: ct[0].Ciphertext, AssociatedData: ad})
	noErr(t, "Decrypt", err)
	if !bytes.Equal(dec[0].Plaintext, gen[0].Plaintext) || !bytes.Equal(dec[1].Plaintext, msg) {
		t.Fatal("Decrypt returned a different plaintext")
	}
}

// sealBuiltin encrypts plaintext in the layout of MinIO's built-in single-key
// KMS as spec §4 describes it: AES-256-GCM under HMAC-SHA256(master, IV),
// output ciphertext‖tag ‖ IV (16 bytes) ‖ nonce (12 bytes).
func sealBuiltin(t *testing.T, master, plaintext, ad []byte) []byte {
	t.Helper()
	iv, nonce := make([]byte, 16), make([]byte, 12)
	_, _ = rand.Read(iv)
	_, _ = rand.Read(nonce)
	mac := hmac.New(sha256.New, master)
	mac.Write(iv)
	block, err := aes.NewCipher(mac.Sum(nil))
	noErr(t, "aes.NewCipher", err)
	gcm, err := cipher.NewGCM(block)
	noErr(t, "cipher.NewGCM", err)
	out := gcm.Seal(nil, nonce, plaintext, ad)
	out = append(out, iv...)
	return append(out, nonce...)
}

// summarize describes a list of names without printing all of them.
func summarize(names []string) string {
	if len(names) <= 6 {
		return fmt.Sprint(names)
	}
	return fmt.Sprintf("%v ... %v", names[:3], names[len(names)-3:])
}

func typeName(t kms.SecretKeyType) string {
	if t == 0 {
		return "empty"
	}
	return t.String()
}
