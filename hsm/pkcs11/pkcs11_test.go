package pkcs11_test

// These tests run against SoftHSM2. Each test makes its own token in a
// temporary directory and points SOFTHSM2_CONF at it with t.Setenv, so
// none of them is parallel: SoftHSM2 reads the variable at C_Initialize.

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/hsm/hsmtest"
	"github.com/kmsledger/kmsledger/hsm/pkcs11"
)

const (
	defaultLib = "/usr/lib/softhsm/libsofthsm2.so"
	userPIN    = "1234"
)

// testModule returns the PKCS#11 module to test with, and fails the test
// if it is missing: CI installs SoftHSM2, so a missing module is a broken
// set-up, not a reason to skip.
func testModule(t *testing.T) string {
	t.Helper()
	lib := os.Getenv("KMSLEDGER_TEST_PKCS11_LIB")
	if lib == "" {
		lib = defaultLib
	}
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("PKCS#11 test module: %v. Install SoftHSM2 (apt-get install softhsm2) or set KMSLEDGER_TEST_PKCS11_LIB to a PKCS#11 library", err)
	}
	return lib
}

// newToken makes a fresh SoftHSM2 token labelled "test" with user PIN
// 1234 in a temporary directory, and returns a Config for it without a
// key label.
func newToken(t *testing.T) pkcs11.Config {
	t.Helper()
	lib := testModule(t)
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		t.Fatalf("softhsm2-util: %v. Install SoftHSM2 (apt-get install softhsm2)", err)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	text := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command(util, "--init-token", "--free", "--label", "test", "--pin", userPIN, "--so-pin", "5678").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v: %s", err, out)
	}
	return pkcs11.Config{Module: lib, TokenLabel: "test", PIN: userPIN}
}

// newKey creates a key labelled label and opens it; Close is a cleanup.
func newKey(t *testing.T, cfg pkcs11.Config, label string) *pkcs11.HSM {
	t.Helper()
	cfg.KeyLabel = label
	if err := pkcs11.CreateKey(cfg); err != nil {
		t.Fatalf("CreateKey(%q) err = %v, want nil", label, err)
	}
	h, err := pkcs11.Open(cfg)
	if err != nil {
		t.Fatalf("Open(%q) err = %v, want nil", label, err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close(%q) err = %v, want nil", label, err)
		}
	})
	return h
}

func TestConformance(t *testing.T) {
	cfg := newToken(t)
	n := 0
	hsmtest.Run(t, func(t *testing.T) hsm.Wrapper {
		n++
		h := newKey(t, cfg, fmt.Sprintf("key-%d", n))
		if h.Format() != pkcs11.FormatGCM {
			t.Fatalf("Format() = %#x on SoftHSM2, want AES-GCM %#x", h.Format(), pkcs11.FormatGCM)
		}
		return h
	})
}

func TestConformanceKWP(t *testing.T) {
	cfg := newToken(t)
	n := 0
	hsmtest.Run(t, func(t *testing.T) hsm.Wrapper {
		n++
		cfg.KeyLabel = fmt.Sprintf("kwp-%d", n)
		if err := pkcs11.CreateKeyKWP(cfg); err != nil {
			t.Fatalf("CreateKeyKWP err = %v, want nil", err)
		}
		h, err := pkcs11.OpenKWP(cfg)
		if err != nil {
			t.Fatalf("OpenKWP err = %v, want nil", err)
		}
		t.Cleanup(func() { h.Close() })
		ct, err := h.Wrap(t.Context(), []byte("x"), nil)
		if err != nil || ct[0] != pkcs11.FormatKWP {
			t.Fatalf("Wrap() = %x, %v, want format %#x", ct, err, pkcs11.FormatKWP)
		}
		return h
	})
}

func TestBlobLayout(t *testing.T) {
	cfg := newToken(t)
	h := newKey(t, cfg, "layout")
	for _, n := range []int{0, 1, 32, 100} {
		ct, err := h.Wrap(t.Context(), make([]byte, n), []byte("aad"))
		if err != nil {
			t.Fatalf("Wrap(%d bytes) err = %v", n, err)
		}
		if want := 1 + 12 + n + 16; len(ct) != want || ct[0] != pkcs11.FormatGCM {
			t.Errorf("Wrap(%d bytes) = %d bytes starting %#x, want %d starting 0x01", n, len(ct), ct[0], want)
		}
	}
	if got, want := h.KeyID(), "pkcs11:test/layout"; got != want {
		t.Errorf("KeyID() = %q, want %q", got, want)
	}
}

// TestRestart wraps, closes (finalising the module), reopens and unwraps.
func TestRestart(t *testing.T) {
	cfg := newToken(t)
	cfg.KeyLabel = "rek-wrapper"
	if err := pkcs11.CreateKey(cfg); err != nil {
		t.Fatalf("CreateKey err = %v", err)
	}
	pt, aad := make([]byte, 32), []byte("kmsledger/rek/v1")
	rand.Read(pt)
	h, err := pkcs11.Open(cfg)
	if err != nil {
		t.Fatalf("Open err = %v", err)
	}
	ct, err := h.Wrap(t.Context(), pt, aad)
	if err != nil {
		t.Fatalf("Wrap err = %v", err)
	}
	id := h.KeyID()
	if err := h.Close(); err != nil {
		t.Fatalf("Close err = %v", err)
	}
	h, err = pkcs11.Open(cfg)
	if err != nil {
		t.Fatalf("Open after Close err = %v", err)
	}
	defer h.Close()
	got, err := h.Unwrap(t.Context(), ct, aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Errorf("Unwrap after reopen = %x, %v, want %x, nil", got, err, pt)
	}
	if h.KeyID() != id {
		t.Errorf("KeyID() after reopen = %q, want %q", h.KeyID(), id)
	}
}

func TestOpenErrors(t *testing.T) {
	cfg := newToken(t)
	cfg.KeyLabel = "present"
	if err := pkcs11.CreateKey(cfg); err != nil {
		t.Fatalf("CreateKey err = %v", err)
	}
	notLib := filepath.Join(t.TempDir(), "not-a-library.so")
	if err := os.WriteFile(notLib, []byte("not an ELF file"), 0o600); err != nil {
		t.Fatal(err)
	}
	slot := uint(987654)
	with := func(f func(*pkcs11.Config)) pkcs11.Config { c := cfg; f(&c); return c }
	tests := []struct {
		name    string
		cfg     pkcs11.Config
		want    error
		mention string
	}{
		{"wrong PIN", with(func(c *pkcs11.Config) { c.PIN = "9876" }), pkcs11.ErrPIN, "incorrect"},
		{"missing key", with(func(c *pkcs11.Config) { c.KeyLabel = "absent" }), pkcs11.ErrKeyNotFound, `"absent"`},
		{"missing token", with(func(c *pkcs11.Config) { c.TokenLabel = "no-such-token" }), pkcs11.ErrTokenNotFound, `"no-such-token"`},
		{"missing slot", with(func(c *pkcs11.Config) { c.TokenLabel, c.Slot = "", &slot }), pkcs11.ErrTokenNotFound, "slot 987654"},
		{"slot of another token", with(func(c *pkcs11.Config) { c.Slot = &slot }), pkcs11.ErrTokenNotFound, "slot 987654"},
		{"module path missing", with(func(c *pkcs11.Config) { c.Module = "/nonexistent/libpkcs11.so" }), pkcs11.ErrModule, "/nonexistent/libpkcs11.so"},
		{"module not a library", with(func(c *pkcs11.Config) { c.Module = notLib }), pkcs11.ErrModule, "not-a-library.so"},
		{"no module", with(func(c *pkcs11.Config) { c.Module = "" }), pkcs11.ErrConfig, "module path"},
		{"no token", with(func(c *pkcs11.Config) { c.TokenLabel = "" }), pkcs11.ErrConfig, "token label or slot"},
		{"no PIN", with(func(c *pkcs11.Config) { c.PIN = "" }), pkcs11.ErrConfig, "PIN"},
		{"no key label", with(func(c *pkcs11.Config) { c.KeyLabel = "" }), pkcs11.ErrConfig, "key label"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := pkcs11.Open(tc.cfg)
			if !errors.Is(err, tc.want) {
				if h != nil {
					h.Close()
				}
				t.Fatalf("Open(%s) err = %v, want %v", tc.name, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("Open(%s) err = %q, want it to mention %s", tc.name, err, tc.mention)
			}
			if tc.cfg.PIN != "" && strings.Contains(err.Error(), tc.cfg.PIN) {
				t.Errorf("Open(%s) err = %q contains the PIN", tc.name, err)
			}
		})
	}
	// The failures above left nothing open: the right PIN still works.
	h, err := pkcs11.Open(cfg)
	if err != nil {
		t.Fatalf("Open(valid config) after the failures err = %v, want nil", err)
	}
	h.Close()
}

func TestSlotSelection(t *testing.T) {
	cfg := newToken(t)
	h := newKey(t, cfg, "by-label")
	// Find the slot through the error listing the present tokens.
	bad := uint(987654)
	_, err := pkcs11.Open(pkcs11.Config{Module: cfg.Module, Slot: &bad, PIN: userPIN, KeyLabel: "by-label"})
	var slot uint
	if _, serr := fmt.Sscanf(err.Error()[strings.Index(err.Error(), `"test" in slot `):], `"test" in slot %d`, &slot); serr != nil {
		t.Fatalf("Open(missing slot) err = %q, want it to list \"test\" in slot N", err)
	}
	h2, err := pkcs11.Open(pkcs11.Config{Module: cfg.Module, Slot: &slot, PIN: userPIN, KeyLabel: "by-label"})
	if err != nil {
		t.Fatalf("Open(slot %d) err = %v, want nil", slot, err)
	}
	defer h2.Close()
	ct, err := h.Wrap(t.Context(), []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := h2.Unwrap(t.Context(), ct, nil); err != nil || string(pt) != "x" {
		t.Errorf("Unwrap through slot = %q, %v, want \"x\", nil", pt, err)
	}
}

func TestCreateKey(t *testing.T) {
	cfg := newToken(t)
	cfg.KeyLabel = "created"
	if err := pkcs11.CreateKey(cfg); err != nil {
		t.Fatalf("CreateKey err = %v, want nil", err)
	}
	if err := pkcs11.CreateKey(cfg); !errors.Is(err, pkcs11.ErrKeyExists) {
		t.Errorf("CreateKey twice err = %v, want ErrKeyExists", err)
	}
	attrs, hidden, err := pkcs11.KeyAttributes(cfg)
	if err != nil {
		t.Fatalf("KeyAttributes err = %v", err)
	}
	want := map[string]bool{"token": true, "private": true, "sensitive": true, "extractable": false,
		"encrypt": true, "decrypt": true, "wrap": false, "unwrap": false}
	for name, v := range want {
		if attrs[name] != v {
			t.Errorf("key attribute CKA_%s = %v, want %v", strings.ToUpper(name), attrs[name], v)
		}
	}
	if !hidden {
		t.Errorf("reading CKA_VALUE of the key succeeded, want it refused")
	}
	bad := cfg
	bad.PIN = "0000"
	if err := pkcs11.CreateKey(bad); !errors.Is(err, pkcs11.ErrPIN) {
		t.Errorf("CreateKey(wrong PIN) err = %v, want ErrPIN", err)
	}
}

func TestConcurrent16(t *testing.T) {
	cfg := newToken(t)
	h := newKey(t, cfg, "concurrent")
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				pt, aad := fmt.Appendf(nil, "%d/%d", g, i), fmt.Appendf(nil, "g%d", g)
				ct, err := h.Wrap(t.Context(), pt, aad)
				if err != nil {
					t.Errorf("goroutine %d: Wrap err = %v", g, err)
					return
				}
				got, err := h.Unwrap(t.Context(), ct, aad)
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("goroutine %d: Unwrap = %q, %v, want %q", g, got, err, pt)
					return
				}
				if _, err := h.Unwrap(t.Context(), ct, []byte("other")); !errors.Is(err, hsm.ErrUnseal) {
					t.Errorf("goroutine %d: Unwrap(other aad) err = %v, want ErrUnseal", g, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestTwoHSMs checks that closing one HSM leaves another on the same
// token (sharing the module and the login) working.
func TestTwoHSMs(t *testing.T) {
	cfg := newToken(t)
	a, b := newKey(t, cfg, "a"), newKey(t, cfg, "b")
	if err := a.Close(); err != nil {
		t.Fatalf("a.Close() err = %v", err)
	}
	if _, err := a.Wrap(t.Context(), []byte("x"), nil); !errors.Is(err, pkcs11.ErrClosed) {
		t.Errorf("a.Wrap after Close err = %v, want ErrClosed", err)
	}
	ct, err := b.Wrap(t.Context(), []byte("x"), nil)
	if err != nil {
		t.Fatalf("b.Wrap after a.Close() err = %v, want nil", err)
	}
	if pt, err := b.Unwrap(t.Context(), ct, nil); err != nil || string(pt) != "x" {
		t.Errorf("b.Unwrap after a.Close() = %q, %v, want \"x\", nil", pt, err)
	}
}

func TestConfigRedactsPIN(t *testing.T) {
	slot := uint(3)
	cfg := pkcs11.Config{Module: "/lib.so", TokenLabel: "tok", Slot: &slot, PIN: "s3cr3t-pin", KeyLabel: "k"}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("hsm", "config", cfg)
	for _, out := range []string{fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), fmt.Sprintf("%v", &cfg), logged.String()} {
		if strings.Contains(out, "s3cr3t") {
			t.Errorf("formatted config %q contains the PIN", out)
		}
		if !strings.Contains(out, "tok") || !strings.Contains(out, "Slot: 3") {
			t.Errorf("formatted config %q lacks the token label or slot", out)
		}
	}
}

// TestUnwrapForeignFormat gives each key a blob of the format it cannot
// open: the token must not be asked, and the answer is ErrUnseal.
func TestUnwrapForeignFormat(t *testing.T) {
	cfg := newToken(t)
	gcm := newKey(t, cfg, "gcm")
	cfg.KeyLabel = "kwp"
	if err := pkcs11.CreateKeyKWP(cfg); err != nil {
		t.Fatalf("CreateKeyKWP err = %v", err)
	}
	kwp, err := pkcs11.OpenKWP(cfg)
	if err != nil {
		t.Fatalf("OpenKWP err = %v", err)
	}
	defer kwp.Close()
	tests := []struct {
		name string
		h    *pkcs11.HSM
		blob []byte
	}{
		{"GCM blob to a wrap-only key", kwp, append([]byte{pkcs11.FormatGCM}, make([]byte, 64)...)},
		{"KWP blob to an encrypt-only key", gcm, append([]byte{pkcs11.FormatKWP}, make([]byte, 64)...)},
		{"unknown format", gcm, append([]byte{0x03}, make([]byte, 64)...)},
	}
	for _, tc := range tests {
		if _, err := tc.h.Unwrap(t.Context(), tc.blob, nil); !errors.Is(err, hsm.ErrUnseal) {
			t.Errorf("Unwrap(%s) err = %v, want ErrUnseal", tc.name, err)
		}
	}
}

// TestBrokenSessions closes the pooled sessions behind the HSM's back: the
// calls that meet a dead session fail (never with ErrUnseal) and replace
// it, and the HSM recovers.
func TestBrokenSessions(t *testing.T) {
	cfg := newToken(t)
	h := newKey(t, cfg, "broken")
	ct, err := h.Wrap(t.Context(), []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.BreakSessions()
	failed := 0
	for i := range 2 * pkcs11.PoolSize {
		pt, err := h.Unwrap(t.Context(), ct, nil)
		switch {
		case errors.Is(err, hsm.ErrUnseal):
			t.Fatalf("Unwrap %d on a dead session err = %v, want a session error, not ErrUnseal", i, err)
		case err != nil:
			failed++
		case string(pt) != "x":
			t.Fatalf("Unwrap %d = %q, want \"x\"", i, pt)
		}
		if i == 0 && err == nil {
			t.Errorf("Unwrap on the first dead session succeeded, want an error")
		}
	}
	if failed > pkcs11.PoolSize {
		t.Errorf("%d of %d calls failed, want at most one per pooled session (%d)", failed, 2*pkcs11.PoolSize, pkcs11.PoolSize)
	}
	if pt, err := h.Unwrap(t.Context(), ct, nil); err != nil || string(pt) != "x" {
		t.Errorf("Unwrap after recovery = %q, %v, want \"x\", nil", pt, err)
	}
}
