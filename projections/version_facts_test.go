package projections

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/ledger"
)

// Every fingerprint and secret reference comes back byte for byte,
// whether it was packed or kept as recorded, and only the usual forms are
// packed.
func TestVersionFactsRoundTrip(t *testing.T) {
	fp := strings.Repeat("0123456789abcdef", 4)
	att := strings.Repeat("fedcba9876543210", 2)
	short := ledger.AttemptOf(att) // "_ty6mHZUMhA": its last character's two low bits are 0
	src := &ledger.ImportSource{Kind: "kes-fs", Name: "k"}
	for _, tc := range []struct {
		name     string
		ref, fp  string
		src      *ledger.ImportSource
		wantForm uint8
		wantRare bool
	}{
		{"usual", ledger.AttemptSecretRef("e1", "k", 7, att), fp, nil, packedFP | packedAttempt, false},
		{"legacy reference", ledger.SecretRef("e1", "k", 7), fp, nil, packedFP | packedLegacy, false},
		{"imported", ledger.AttemptSecretRef("e1", "k", 7, att), fp, src, packedFP | packedAttempt, true},
		{"uppercase fingerprint", ledger.AttemptSecretRef("e1", "k", 7, att), strings.ToUpper(fp), nil, packedAttempt, true},
		{"short fingerprint", ledger.SecretRef("e1", "k", 7), fp[:62], nil, packedLegacy, true},
		{"no fingerprint, no reference", "", "", nil, 0, false},
		{"other enclave", ledger.AttemptSecretRef("e2", "k", 7, att), fp, nil, packedFP, true},
		{"other key", ledger.AttemptSecretRef("e1", "kk", 7, att), fp, nil, packedFP, true},
		{"other version", ledger.AttemptSecretRef("e1", "k", 70, att), fp, nil, packedFP, true},
		{"short attempt", ledger.AttemptSecretRef("e1", "k", 7, att[:30]), fp, nil, packedFP, true},
		{"uppercase attempt", ledger.AttemptSecretRef("e1", "k", 7, strings.ToUpper(att)), fp, nil, packedFP, true},
		{"attempt not after a dot", ledger.SecretRef("e1", "k", 7) + "x" + att[1:], fp, nil, packedFP, true},
		{"AttemptOf's attempt", ledger.AttemptSecretRef("e1", "k", 7, short), fp, nil, packedFP | packedShort, false},
		{"imported, AttemptOf's attempt", ledger.AttemptSecretRef("e1", "k", 7, short), fp, src, packedFP | packedShort, true},
		{"short attempt, trailing bits set", ledger.AttemptSecretRef("e1", "k", 7, short[:10]+"B"), fp, nil, packedFP, true},
		{"short attempt, 10 characters", ledger.AttemptSecretRef("e1", "k", 7, short[:10]), fp, nil, packedFP, true},
		{"short attempt, 12 characters", ledger.AttemptSecretRef("e1", "k", 7, short+"A"), fp, nil, packedFP, true},
		{"short attempt, standard alphabet", ledger.AttemptSecretRef("e1", "k", 7, "+/"+short[2:]), fp, nil, packedFP, true},
		{"prefix of the reference only", "e1.k", fp, nil, packedFP, true},
		{"opaque reference", "r", fp, nil, packedFP, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &Version{Version: 7}
			v.setFacts("e1", "k", tc.ref, tc.fp, tc.src)
			if v.form != tc.wantForm || (v.rare != nil) != tc.wantRare {
				t.Errorf("form %04b, rare %v; want %04b, %v", v.form, v.rare != nil, tc.wantForm, tc.wantRare)
			}
			if got := v.SecretRef("e1", "k"); got != tc.ref {
				t.Errorf("SecretRef = %q, want %q", got, tc.ref)
			}
			if got := string(v.AppendSecretRef([]byte("pre"), "e1", "k")); got != "pre"+tc.ref {
				t.Errorf("AppendSecretRef = %q, want %q", got, "pre"+tc.ref)
			}
			if got := v.Fingerprint(); got != tc.fp {
				t.Errorf("Fingerprint = %q, want %q", got, tc.fp)
			}
			if v.Source() != tc.src {
				t.Errorf("Source = %v, want %v", v.Source(), tc.src)
			}
			c := copyVersion(v)
			if c.SecretRef("e1", "k") != tc.ref || c.Fingerprint() != tc.fp || c.Source() != tc.src {
				t.Errorf("copy: %q %q %v", c.SecretRef("e1", "k"), c.Fingerprint(), c.Source())
			}
		})
	}
}

// setFacts keeps no reference to the bytes it is given: the snapshot
// decoder hands it views of a buffer it reuses.
func TestVersionFactsCopyViews(t *testing.T) {
	buf := []byte("opaque-reference" + "NOT-A-HEX-FINGERPRINT")
	v := &Version{Version: 1}
	v.setFacts("e", "k", viewString(buf[:16]), viewString(buf[16:]), nil)
	for i := range buf {
		buf[i] = 'x'
	}
	if v.SecretRef("e", "k") != "opaque-reference" || v.Fingerprint() != "NOT-A-HEX-FINGERPRINT" {
		t.Fatalf("facts changed with the buffer: %q %q", v.SecretRef("e", "k"), v.Fingerprint())
	}
}

// A version kept from an event reads back its facts through a snapshot,
// packed or not.
func TestVersionFactsThroughSnapshot(t *testing.T) {
	st := NewState()
	apply := func(st *State, typ, enclave, subject string, p any) {
		t.Helper()
		b, _ := json.Marshal(p)
		if err := st.Apply(ledger.Event{Type: typ, Time: time.Unix(1, 0), Enclave: enclave, Aggregate: subject, Payload: b}); err != nil {
			t.Fatal(err)
		}
	}
	apply(st, ledger.TypeSystemInitialized, "", ledger.SystemSubject(), ledger.SystemInitialized{RootIdentity: "root"})
	apply(st, ledger.TypeEnclaveCreated, "", ledger.EnclaveSubject("e"), ledger.EnclaveCreated{Name: "e"})
	fp := strings.Repeat("ab", 32)
	usual := ledger.AttemptSecretRef("e", "k", 1, strings.Repeat("cd", 16))
	apply(st, ledger.TypeKeyCreated, "e", ledger.KeySubject("e", "k"), ledger.KeyCreated{Name: "k", Version: 1, SecretRef: usual, Fingerprint: fp})
	apply(st, ledger.TypeKeyCreated, "e", ledger.KeySubject("e", "odd"), ledger.KeyCreated{Name: "odd", Version: 1, SecretRef: "odd-ref", Fingerprint: "ODD"})
	got, err := decodeState(encodeState(nil, st), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][2]string{"k": {usual, fp}, "odd": {"odd-ref", "ODD"}} {
		v := got.Enclaves["e"].Keys[name].Latest()
		if v.SecretRef("e", name) != want[0] || v.Fingerprint() != want[1] {
			t.Errorf("%s: %q %q, want %q %q", name, v.SecretRef("e", name), v.Fingerprint(), want[0], want[1])
		}
	}
}

// Whatever an event records, packed or not, reads back as recorded.
func FuzzVersionFacts(f *testing.F) {
	f.Add("e1", "k", uint32(7), ledger.AttemptSecretRef("e1", "k", 7, strings.Repeat("0f", 16)), strings.Repeat("a1", 32))
	f.Add("e", "k.x", uint32(0), "e.k.x.0", "")
	f.Add("", "", uint32(1), "..1", strings.Repeat("0", 64))
	f.Fuzz(func(t *testing.T, enclave, name string, version uint32, ref, fp string) {
		v := &Version{Version: version}
		v.setFacts(enclave, name, ref, fp, nil)
		if got := string(v.AppendSecretRef(nil, enclave, name)); got != ref {
			t.Fatalf("AppendSecretRef = %q, want %q (form %03b)", got, ref, v.form)
		}
		if got := v.SecretRef(enclave, name); got != ref {
			t.Fatalf("SecretRef = %q, want %q (form %03b)", got, ref, v.form)
		}
		if got := v.Fingerprint(); got != fp {
			t.Fatalf("Fingerprint = %q, want %q (form %03b)", got, fp, v.form)
		}
	})
}

// TestDecodeLowerHex: exactly the strings hex.EncodeToString gives are
// decoded, to the bytes they encode; every other byte in any position,
// uppercase digits and a wrong length are refused.
func TestDecodeLowerHex(t *testing.T) {
	for c := range 256 {
		for pos := range 2 {
			s := []byte("a5")
			s[pos] = byte(c)
			var dst [1]byte
			got := ledger.DecodeLowerHex(dst[:], string(s))
			want, err := hex.DecodeString(string(s))
			lower := err == nil && hex.EncodeToString(want) == string(s)
			if got != lower || (got && dst[0] != want[0]) {
				t.Errorf("%q: decoded %v (%#x), want %v (%x)", s, got, dst[0], lower, want)
			}
		}
	}
	want := []byte{0x00, 0x9f, 0xa0, 0xff}
	dst := make([]byte, len(want))
	if !ledger.DecodeLowerHex(dst, hex.EncodeToString(want)) || !bytes.Equal(dst, want) {
		t.Errorf("decoded %x, want %x", dst, want)
	}
	for _, s := range []string{"009fa0f", "009fa0ff0", "009FA0FF", ""} {
		if ledger.DecodeLowerHex(dst, s) {
			t.Errorf("%q decoded into %d bytes", s, len(dst))
		}
	}
}

// Packing the usual facts allocates nothing (a start packs a million
// versions from a snapshot), whichever form the attempt has.
func TestVersionFactsPackWithoutAllocating(t *testing.T) {
	fp := strings.Repeat("0123456789abcdef", 4)
	att := strings.Repeat("fedcba9876543210", 2)
	for _, ref := range []string{
		ledger.AttemptSecretRef("e1", "k", 7, ledger.AttemptOf(att)),
		ledger.AttemptSecretRef("e1", "k", 7, att),
	} {
		v := &Version{Version: 7}
		if n := testing.AllocsPerRun(100, func() { v.setFacts("e1", "k", ref, fp, nil) }); n != 0 || v.rare != nil {
			t.Errorf("setFacts(%q): %v allocations, rare %v; want none", ref, n, v.rare != nil)
		}
	}
}
