package softkey_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/hsm"
	"github.com/kmsledger/kmsledger/hsm/hsmtest"
	"github.com/kmsledger/kmsledger/hsm/softkey"
)

func newKey(t testing.TB) *softkey.Key {
	t.Helper()
	s, err := softkey.Generate(rand.Reader)
	if err != nil {
		t.Fatalf("Generate err = %v, want nil", err)
	}
	k, err := softkey.Parse(s)
	if err != nil {
		t.Fatalf("Parse(Generate()) err = %v, want nil", err)
	}
	return k
}

func TestConformance(t *testing.T) {
	t.Parallel()
	hsmtest.Run(t, func(t *testing.T) hsm.Wrapper { return newKey(t) })
}

func TestGenerateFormat(t *testing.T) {
	t.Parallel()
	s, err := softkey.Generate(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatalf("Generate err = %v, want nil", err)
	}
	want := "hsm:aes256:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	if s != want {
		t.Errorf("Generate = %q, want %q", s, want)
	}
	if _, err := softkey.Generate(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Errorf("Generate(short reader) err = nil, want an error")
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	secret := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	tests := []struct {
		name, in, wantMsg string
	}{
		{"empty", "", "must start with"},
		{"no prefix", secret, "must start with"},
		{"other algorithm", "hsm:aes128:" + secret, "must start with"},
		{"upper-case prefix", "HSM:AES256:" + secret, "must start with"},
		{"url base64", "hsm:aes256:" + strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))), "not valid standard base64"},
		{"unpadded", "hsm:aes256:" + strings.TrimRight(secret, "="), "not valid standard base64"},
		{"bad characters", "hsm:aes256:" + secret[:10] + "!" + secret[11:], "not valid standard base64"},
		{"16 bytes", "hsm:aes256:" + base64.StdEncoding.EncodeToString(make([]byte, 16)), "got 16"},
		{"33 bytes", "hsm:aes256:" + base64.StdEncoding.EncodeToString(make([]byte, 33)), "got 33"},
		{"empty key", "hsm:aes256:", "got 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := softkey.Parse(tc.in)
			if !errors.Is(err, softkey.ErrInvalidKey) {
				t.Fatalf("Parse(%s) err = %v, want ErrInvalidKey", tc.name, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Parse(%s) err = %q, want it to mention %q", tc.name, err, tc.wantMsg)
			}
			if len(tc.in) > len(softkey.Prefix)+4 && strings.Contains(err.Error(), tc.in[len(tc.in)-8:]) {
				t.Errorf("Parse(%s) err = %q echoes the key", tc.name, err)
			}
		})
	}
}

func TestParseToleratesSurroundingSpace(t *testing.T) {
	t.Parallel()
	s, _ := softkey.Generate(rand.Reader)
	a, err := softkey.Parse(s)
	if err != nil {
		t.Fatalf("Parse err = %v", err)
	}
	b, err := softkey.Parse(s + "\n")
	if err != nil {
		t.Fatalf("Parse(key + newline) err = %v, want nil", err)
	}
	if a.KeyID() != b.KeyID() {
		t.Errorf("KeyID differs with a trailing newline: %q vs %q", a.KeyID(), b.KeyID())
	}
}

func TestKeyIDAndRedaction(t *testing.T) {
	t.Parallel()
	raw := bytes.Repeat([]byte{0x42}, 32)
	s := softkey.Prefix + base64.StdEncoding.EncodeToString(raw)
	k, err := softkey.Parse(s)
	if err != nil {
		t.Fatalf("Parse err = %v", err)
	}
	id := k.KeyID()
	if len(id) != len("soft:")+16 || !strings.HasPrefix(id, "soft:") {
		t.Errorf("KeyID() = %q, want soft: + 16 hex", id)
	}
	k2, _ := softkey.Parse(s)
	if k2.KeyID() != id {
		t.Errorf("KeyID() of the same key = %q and %q, want equal", k2.KeyID(), id)
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	for _, out := range []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), fmt.Sprintf("%+v %#v", *k, *k), k.LogValue().String(),
	} {
		if strings.Contains(out, enc) || strings.Contains(out, "BBBB") || strings.Contains(out, string(raw)) {
			t.Errorf("formatted key %q contains the key", out)
		}
	}
	if b, err := json.Marshal(k); err == nil {
		t.Errorf("json.Marshal(key) = %s, want an error", b)
	}
}

func TestDeriveSeed(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	a, b := k.DeriveSeed("kmsledger/root-api-key/v1"), k.DeriveSeed("kmsledger/root-api-key/v1")
	if len(a) != 32 || !bytes.Equal(a, b) {
		t.Errorf("DeriveSeed twice = %x, %x, want equal 32-byte seeds", a, b)
	}
	if c := k.DeriveSeed("other"); bytes.Equal(a, c) {
		t.Errorf("DeriveSeed with different labels gave the same seed")
	}
	if d := newKey(t).DeriveSeed("kmsledger/root-api-key/v1"); bytes.Equal(a, d) {
		t.Errorf("DeriveSeed of different keys gave the same seed")
	}
}

// TestDeriveSeedKnownAnswer pins the HKDF construction (RFC 5869,
// SHA-256, no salt) so derived root API keys never change.
func TestDeriveSeedKnownAnswer(t *testing.T) {
	t.Parallel()
	k, err := softkey.Parse(softkey.Prefix + base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%x", k.DeriveSeed("label"))
	// Computed independently: HMAC(HMAC(0^32, 0^32), "label" ‖ 0x01).
	const want = "63787e3b0f7507950a3e4f321edb63b92978770da0d2b70d2a8ce1ca5b7b2413"
	if got != want {
		t.Errorf("DeriveSeed(zero key, \"label\") = %s, want %s", got, want)
	}
}

func TestUnwrapRejectsUnknownFormat(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	ct, err := k.Wrap(t.Context(), []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ct[0] != 0x01 {
		t.Fatalf("Wrap()[0] = %#x, want format byte 0x01", ct[0])
	}
	ct[0] = 0x02
	if _, err := k.Unwrap(t.Context(), ct, nil); !errors.Is(err, hsm.ErrUnseal) {
		t.Errorf("Unwrap(format 0x02) err = %v, want ErrUnseal", err)
	}
}
