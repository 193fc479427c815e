package ledger

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
)

func TestValidName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want bool
	}{
		{"a", true},
		{"my-key_01", true},
		{"ABC-xyz-019_", true},
		{"__", true},
		{"-", true},
		{strings.Repeat("k", 80), true},
		{"", false},
		{"_", false},
		{strings.Repeat("k", 81), false},
		{"a.b", false},
		{"*", false},
		{">", false},
		{"a*", false},
		{"a>", false},
		{"a b", false},
		{"a\tb", false},
		{"a\nb", false},
		{"key/1", false},
		{"clé", false},
		{"h1:abc", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		if got := ValidName(tt.name); got != tt.want {
			t.Errorf("ValidName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"a", "_", "a.b", "a b", "*", ">", "k-1_x", strings.Repeat("z", 81), "\u00a0", "a\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidName(s) {
			return
		}
		if s == "_" || len(s) == 0 || len(s) > 80 {
			t.Fatalf("ValidName(%q) = true, want false (length or reserved)", s)
		}
		if strings.ContainsAny(s, ".*>") || strings.ContainsFunc(s, unicode.IsSpace) ||
			strings.ContainsFunc(s, func(r rune) bool { return r > unicode.MaxASCII || unicode.IsControl(r) }) {
			t.Fatalf("ValidName(%q) = true, but it is not a safe subject token", s)
		}
		// A valid name in any position yields a literal subject with the
		// expected number of tokens.
		for _, subj := range []string{KeySubject(s, s), PolicySubject(s, s), EnclaveSubject(s)} {
			if !validSubject(subj, ledgerPrefix, false) || len(strings.Split(subj, ".")) != 4 {
				t.Fatalf("subject %q from valid name %q is not a 4-token literal", subj, s)
			}
		}
		if got := EnclaveWildcard(s); strings.Count(got, ">") != 1 || !strings.HasSuffix(got, ".>") {
			t.Fatalf("EnclaveWildcard(%q) = %q", s, got)
		}
	})
}

func TestSubjects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		got, want string
	}{
		{EnclaveSubject("prod"), "ledger._.enclave.prod"},
		{SystemSubject(), "ledger._.system"},
		{KeySubject("prod", "my-key"), "ledger.prod.key.my-key"},
		{IdentitySubject("prod", "h1:AbC-_x"), "ledger.prod.identity.h1:AbC-_x"},
		{PolicySubject("prod", "admin"), "ledger.prod.policy.admin"},
		{EnclaveWildcard("prod"), "ledger.prod.>"},
		{SecretRef("prod", "my-key", 0), "prod.my-key.0"},
		{SecretRef("prod", "my-key", 4294967295), "prod.my-key.4294967295"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("subject = %q, want %q", tt.got, tt.want)
		}
	}
}

func TestValidSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		subj string
		wild bool
		want bool
	}{
		{"ledger.a.key.b", false, true},
		{"ledger.a.>", true, true},
		{"ledger.a.>", false, false},
		{"ledger.*.key.b", true, true},
		{"ledger.>.key", true, false},
		{"ledger.a*.key", true, false},
		{"ledger.", false, false},
		{"ledger", false, false},
		{"ledger..a", false, false},
		{"ledger.a.", false, false},
		{"ledger.a b", false, false},
		{"ledger.a\x7f", false, false},
		{"secrets.a.b.1", false, false},
		{"ledger.>", true, true},
	}
	for _, tt := range tests {
		if got := validSubject(tt.subj, ledgerPrefix, tt.wild); got != tt.want {
			t.Errorf("validSubject(%q, wild=%v) = %v, want %v", tt.subj, tt.wild, got, tt.want)
		}
	}
}

func TestSplitSecretRef(t *testing.T) {
	t.Parallel()
	for ref, want := range map[string]string{
		"e1.k.3": "e1 k 3",
		"e1.k.12.0123456789abcdef0123456789abcdef": "e1 k 12",
		"e1.k":            "",
		"e1.k.x":          "",
		"e1.k.1.a.b":      "",
		"e1.k.4294967296": "",
	} {
		e, n, v, ok := SplitSecretRef(ref)
		got := ""
		if ok {
			got = fmt.Sprintf("%s %s %d", e, n, v)
		}
		if got != want {
			t.Errorf("SplitSecretRef(%q) = %q, want %q", ref, got, want)
		}
	}
}

// AttemptOf shortens the commands layer's event ids (32 lower-case hex
// digits) to their first 8 bytes in base64url, and keeps any other id as
// it is; the reference it ends is a valid SECRETS subject and splits back.
func TestAttemptOf(t *testing.T) {
	for id, want := range map[string]string{
		"fedcba98765432100123456789abcdef": "_ty6mHZUMhA",
		"c4f9545dadd78423444ce8c3f0892a39": "xPlUXa3XhCM",
		"C4F9545DADD78423444CE8C3F0892A39": "C4F9545DADD78423444CE8C3F0892A39", // not lower case
		"c4f9545dadd78423444ce8c3f0892a3":  "c4f9545dadd78423444ce8c3f0892a3",  // 31 digits
		"c4f9545dadd78423444ce8c3f0892a3g": "c4f9545dadd78423444ce8c3f0892a3g",
		"e1":                               "e1",
	} {
		got := AttemptOf(id)
		if got != want {
			t.Errorf("AttemptOf(%q) = %q, want %q", id, got, want)
		}
		ref := AttemptSecretRef("e1", "k-1", 3, got)
		if !validSubject(secretSubject(ref), secretsPrefix, false) {
			t.Errorf("%q is not a valid SECRETS subject", secretSubject(ref))
		}
		if e, k, v, ok := SplitSecretRef(ref); !ok || e != "e1" || k != "k-1" || v != 3 {
			t.Errorf("SplitSecretRef(%q) = %q %q %d %v", ref, e, k, v, ok)
		}
	}
}
