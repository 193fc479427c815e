package client_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/api/client"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		allow map[string][]string
		deny  map[string][]string
		err   bool
	}{
		{"String", `{"allow":{"KEY:GENERATE":"minio-*"}}`, map[string][]string{"KEY:GENERATE": {"minio-*"}}, nil, false},
		{"Array", `{"allow":{"KEY:DECRYPT":["b*","a","a",""]}}`, map[string][]string{"KEY:DECRYPT": {"a", "b*"}}, nil, false},
		{"Object", `{"deny":{"KEY:DELETE":{"*":{},"x":{}}}}`, nil, map[string][]string{"KEY:DELETE": {"*", "x"}}, false},
		{"Mixed", `{"allow":{"KEY:GENERATE":"minio-*","KEY:DECRYPT":["a","b*"]},"deny":{"key:delete":{"*":{}}}}`,
			map[string][]string{"KEY:GENERATE": {"minio-*"}, "KEY:DECRYPT": {"a", "b*"}},
			map[string][]string{"KEY:DELETE": {"*"}}, false},
		{"CaseMerged", `{"allow":{"key:list":"a","KEY:LIST":["b"]}}`, map[string][]string{"KEY:LIST": {"a", "b"}}, nil, false},
		{"EmptyPattern", `{"allow":{"KEY:LIST":""}}`, map[string][]string{"KEY:LIST": nil}, nil, false},
		{"Empty", `{}`, nil, nil, false},
		{"GetPolicyOutput", `{"name":"p","allow":{"KEY:LIST":["*"]},"created_at":"2025-01-01T00:00:00Z","created_by":"h1:x"}`,
			map[string][]string{"KEY:LIST": {"*"}}, nil, false},
		{"UnknownCommand", `{"allow":{"KEY:STEAL":"*"}}`, nil, nil, true},
		{"NumberRuleSet", `{"allow":{"KEY:LIST":1}}`, nil, nil, true},
		{"NumberInArray", `{"allow":{"KEY:LIST":[1]}}`, nil, nil, true},
		{"NonObjectRule", `{"allow":{"KEY:LIST":{"a":1}}}`, nil, nil, true},
		{"UnknownField", `{"allow":{},"alow":{}}`, nil, nil, true},
		{"Trailing", `{"allow":{}} {}`, nil, nil, true},
		{"NotJSON", `allow`, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := client.ParsePolicyFile(strings.NewReader(tt.in))
			if tt.err {
				if !errors.Is(err, client.ErrPolicyFile) {
					t.Fatalf("ParsePolicyFile(%s) err = %v, want ErrPolicyFile", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePolicyFile(%s) err = %v", tt.in, err)
			}
			if !reflect.DeepEqual(got.Allow, tt.allow) || !reflect.DeepEqual(got.Deny, tt.deny) {
				t.Fatalf("ParsePolicyFile(%s) = allow %v deny %v; want %v %v", tt.in, got.Allow, got.Deny, tt.allow, tt.deny)
			}
		})
	}
}
