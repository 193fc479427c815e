package kescompat_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/migrate/kescompat"
)

func TestPolicyRules(t *testing.T) {
	const hexID = "54cd2e2f0410061385ce7dda7fcd46f95c1f93c53eab4fe03225f6f20153fff9"
	const h1ID = "h1:VM0uLwQQBhOFzn3af81G-Vwfk8U-q0_gMiX28gFT__k"
	all := func(cmds ...string) map[string][]string {
		m := map[string][]string{}
		for _, c := range cmds {
			m[c] = []string{"*"}
		}
		return m
	}
	keyCmds := []string{"KEY:CREATE", "KEY:IMPORT", "KEY:STATUS", "KEY:DELETE", "KEY:LIST", "KEY:GENERATE", "KEY:ENCRYPT", "KEY:DECRYPT", "KEY:MAC"}
	tests := []struct {
		name        string
		allow, deny []string
		wantAllow   map[string][]string
		wantDeny    map[string][]string
		wantErr     string // "" = none; else a substring naming the pattern
	}{
		{"MinIO", []string{"/v1/key/create/minio-*", "/v1/key/generate/minio-*", "/v1/key/decrypt/minio-*"}, nil,
			map[string][]string{"KEY:CREATE": {"minio-*"}, "KEY:GENERATE": {"minio-*"}, "KEY:DECRYPT": {"minio-*"}}, map[string][]string{}, ""},
		{"ExactAndDeny", []string{"/v1/key/decrypt/*", "/v1/key/hmac/k1"}, []string{"/v1/key/decrypt/secret"},
			map[string][]string{"KEY:DECRYPT": {"*"}, "KEY:MAC": {"k1"}}, map[string][]string{"KEY:DECRYPT": {"secret"}}, ""},
		{"StarAbsorbs", []string{"/v1/key/generate/a*", "/v1/key/generate/*", "/v1/key/generate/b"}, nil,
			map[string][]string{"KEY:GENERATE": {"*"}}, map[string][]string{}, ""},
		{"AllKeyAPIs", []string{"/v1/key/*"}, nil, all(keyCmds...), map[string][]string{}, ""},
		{"PrefixOfAPIs", []string{"/v1/key/d*"}, nil, all("KEY:STATUS", "KEY:DELETE", "KEY:DECRYPT"), map[string][]string{}, ""},
		{"Everything", []string{"*"}, nil,
			all(append(keyCmds, "POLICY:STATUS", "POLICY:GET", "POLICY:LIST", "IDENTITY:STATUS", "IDENTITY:LIST")...), map[string][]string{}, ""},
		{"PolicyAndIdentity", []string{"/v1/policy/read/p*", "/v1/identity/describe/" + hexID, "/v1/identity/list/*"}, nil,
			map[string][]string{"POLICY:GET": {"p*"}, "IDENTITY:STATUS": {h1ID}, "IDENTITY:LIST": {"*"}}, map[string][]string{}, ""},
		{"ListAsTheSDKSendsIt", []string{"/v1/key/list"}, nil, map[string][]string{"KEY:LIST": {"*"}}, map[string][]string{}, ""},
		{"ListWithPrefix", []string{"/v1/key/list/minio*"}, nil, map[string][]string{"KEY:LIST": {"minio*"}}, map[string][]string{}, ""},
		{"OpenAPIsIgnored", []string{"/v1/status", "/v1/metrics", "/v1/api", "/version", "/v1/identity/self/describe"}, []string{"/v1/ready"},
			map[string][]string{}, map[string][]string{}, ""},
		{"DenyOfUnservedIsNoop", nil, []string{"/v1/log/audit", "/v1/secret/*"}, map[string][]string{}, map[string][]string{}, ""},
		{"OldGlob", []string{"/v1/key/*/minio", "/v1/key/generate/a"}, nil,
			map[string][]string{"KEY:GENERATE": {"a"}}, map[string][]string{}, `"/v1/key/*/minio"`},
		{"QuestionMark", nil, []string{"/v1/key/decrypt/key?"}, map[string][]string{}, map[string][]string{}, `"/v1/key/decrypt/key?"`},
		{"UnservedAPI", []string{"/v1/log/audit", "/v1/key/create/x"}, nil,
			map[string][]string{"KEY:CREATE": {"x"}}, map[string][]string{}, `"/v1/log/audit" grants no API`},
		{"NotAPath", []string{"key-create"}, nil, map[string][]string{}, map[string][]string{}, `"key-create" is not an API path`},
		{"HexPrefix", []string{"/v1/identity/describe/54cd*"}, nil, map[string][]string{}, map[string][]string{}, "hex identity"},
		{"BadHex", []string{"/v1/identity/describe/zz"}, nil, map[string][]string{}, map[string][]string{}, "not a hex identity"},
		{"DenyListPrefix", nil, []string{"/v1/key/list/secret*"}, map[string][]string{}, map[string][]string{}, "listing cannot be denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allow, deny, err := kescompat.PolicyRules(tt.allow, tt.deny)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err = %v, want nil", err)
			case tt.wantErr != "" && (!errors.Is(err, kescompat.ErrPolicy) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want ErrPolicy naming %s", err, tt.wantErr)
			}
			if !reflect.DeepEqual(allow, tt.wantAllow) || !reflect.DeepEqual(deny, tt.wantDeny) {
				t.Fatalf("rules = allow %v deny %v, want allow %v deny %v", allow, deny, tt.wantAllow, tt.wantDeny)
			}
		})
	}
}

// A KES pattern whose name part is no kmsledger name (KES ≤ v0.22 key
// stores may hold "my.key") is reported, never handed on as a rule the
// kms API would refuse; the rest of the policy still maps.
func TestPolicyRulesRefuseInvalidNames(t *testing.T) {
	allow, deny, err := kescompat.PolicyRules([]string{"/v1/key/generate/my.key", "/v1/key/decrypt/ok-*"}, []string{"/v1/key/decrypt/a.b*"})
	if !errors.Is(err, kescompat.ErrPolicy) || !strings.Contains(err.Error(), "my.key") || !strings.Contains(err.Error(), "a.b*") {
		t.Fatalf("err = %v, want both invalid names reported", err)
	}
	if want := map[string][]string{"KEY:DECRYPT": {"ok-*"}}; !reflect.DeepEqual(allow, want) {
		t.Fatalf("allow = %v, want %v", allow, want)
	}
	if len(deny) != 0 {
		t.Fatalf("deny = %v, want none", deny)
	}
	if _, err := wire.ParseRules(allow); err != nil {
		t.Fatalf("mapped rules are refused by the edge: %v", err)
	}
}

// PolicyPaths is the inverse of PolicyRules for what KES can express:
// identities come back in hex, bulk decrypt folds into decrypt, and
// commands without a KES API are left out.
func TestPolicyPaths(t *testing.T) {
	const hexID = "54cd2e2f0410061385ce7dda7fcd46f95c1f93c53eab4fe03225f6f20153fff9"
	kes := []string{"/v1/key/create/minio-*", "/v1/key/decrypt/minio-*", "/v1/key/generate/k1", "/v1/identity/describe/" + hexID, "/v1/policy/list/*"}
	rules, _, err := kescompat.PolicyRules(append(kes, "/v1/key/bulk/decrypt/minio-*"), nil)
	if err != nil {
		t.Fatalf("PolicyRules err = %v, want nil", err)
	}
	rules["ENCLAVE:CREATE"] = []string{"*"} // no KES API
	got := kescompat.PolicyPaths(rules)
	want := map[string]struct{}{}
	for _, p := range kes {
		want[p] = struct{}{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("PolicyPaths = %v, want %v", got, want)
	}
	if got := kescompat.PolicyPaths(map[string][]string{"ENCLAVE:CREATE": {"*"}}); got != nil {
		t.Fatalf("PolicyPaths(no KES command) = %v, want nil", got)
	}
}

// An identity pattern may name the identity in either form.
func TestPolicyRulesIdentityForms(t *testing.T) {
	const h1ID = "h1:VM0uLwQQBhOFzn3af81G-Vwfk8U-q0_gMiX28gFT__k"
	allow, _, err := kescompat.PolicyRules([]string{"/v1/identity/describe/" + h1ID}, nil)
	if err != nil || !reflect.DeepEqual(allow, map[string][]string{"IDENTITY:STATUS": {h1ID}}) {
		t.Fatalf("PolicyRules(h1: identity) = %v, %v, want IDENTITY:STATUS %s", allow, err, h1ID)
	}
}
