package kescompat_test

import (
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/migrate/kescompat"
)

// The identity of the KES API key kes:v1:AOx5cJcj+uYhi52FQFRNaqvP9yBBkvBEb1yLo4RQPnNK
// (real KES output) in both forms.
const (
	vectorHex = "54cd2e2f0410061385ce7dda7fcd46f95c1f93c53eab4fe03225f6f20153fff9"
	vectorH1  = "h1:VM0uLwQQBhOFzn3af81G-Vwfk8U-q0_gMiX28gFT__k"
)

func TestH1(t *testing.T) {
	t.Parallel()
	if got, ok := kescompat.H1(vectorHex); !ok || got != vectorH1 {
		t.Errorf("H1(%s) = %q, %v, want %s, true", vectorHex, got, ok, vectorH1)
	}
	if got, ok := kescompat.H1(strings.ToUpper(vectorHex)); !ok || got != vectorH1 {
		t.Errorf("H1(upper case) = %q, %v, want %s, true", got, ok, vectorH1)
	}
	// Placeholders of a KES config, truncated or overlong hex, and the
	// other form are not KES identities.
	for _, bad := range []string{"", "disabled", "${ADMIN}", vectorHex[:62], vectorHex + "00", vectorHex[:63] + "g", vectorH1} {
		if got, ok := kescompat.H1(bad); ok || got != "" {
			t.Errorf("H1(%q) = %q, %v, want \"\", false", bad, got, ok)
		}
	}
}

func TestParseIdentity(t *testing.T) {
	t.Parallel()
	for _, in := range []string{vectorHex, vectorH1} {
		if got, ok := kescompat.ParseIdentity(in); !ok || got != vectorH1 {
			t.Errorf("ParseIdentity(%q) = %q, %v, want %s, true", in, got, ok, vectorH1)
		}
	}
	for _, bad := range []string{"", "disabled", "h1:", "h1:" + vectorHex, vectorH1[:len(vectorH1)-1], vectorHex[:63]} {
		if got, ok := kescompat.ParseIdentity(bad); ok {
			t.Errorf("ParseIdentity(%q) = %q, true, want false", bad, got)
		}
	}
}

func TestKESIdentity(t *testing.T) {
	t.Parallel()
	if got := kescompat.KESIdentity(vectorH1); got != vectorHex {
		t.Errorf("KESIdentity(%s) = %q, want %s", vectorH1, got, vectorHex)
	}
	// Anything that is not an h1: identity is returned as it is.
	for _, other := range []string{"", "root", vectorHex, "h1:", "h1:!!", vectorH1[:len(vectorH1)-2]} {
		if got := kescompat.KESIdentity(other); got != other {
			t.Errorf("KESIdentity(%q) = %q, want it unchanged", other, got)
		}
	}
}

func FuzzIdentityRoundTrip(f *testing.F) {
	f.Add(vectorHex)
	f.Add(vectorH1)
	f.Add("disabled")
	f.Fuzz(func(t *testing.T, s string) {
		h1, ok := kescompat.ParseIdentity(s)
		if !ok {
			return
		}
		hexID := kescompat.KESIdentity(h1)
		if back, ok := kescompat.H1(hexID); !ok || back != h1 {
			t.Fatalf("ParseIdentity(%q) = %s; KESIdentity = %s; H1 = %q, %v: no round trip", s, h1, hexID, back, ok)
		}
		if hexID != strings.ToLower(hexID) || len(hexID) != 64 {
			t.Fatalf("KESIdentity(%s) = %q, want 64 lowercase hex digits", h1, hexID)
		}
	})
}
