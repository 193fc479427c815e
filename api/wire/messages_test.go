package wire

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// sampleMessages returns every message type with all fields set to
// non-default values, and each type once more with all fields default.
func sampleMessages() []Message {
	ts := time.Date(2025, 3, 1, 12, 30, 45, 123456789, time.UTC)
	id := "h1:1XtC8x9-VpkRibo1WuzcIAXzrpKIxLjlMErH9zkZkQE"
	rules := map[string][]string{"KEY:DECRYPT": {"a", "b*"}, "KEY:GENERATE": {"minio-*"}}
	node := ServerStatusResponse{
		Version: "v1.2", APIVersion: "v1", Host: "kms1:7373", UpTime: 36*time.Hour + 5*time.Nanosecond,
		Role: "Leader", Commit: 1 << 40, Nodes: map[uint32]string{0: "kms1:7373", 2: "kms2:7373"},
		ID: 2, LeaderID: -1, LastHeartbeat: -3 * time.Millisecond, HeartbeatInterval: time.Second,
		ElectionTimeout: 5 * time.Second, OS: "linux", Arch: "amd64", CPUs: 8, UsableCPUs: 4,
		HeapMemInUse: 1 << 33, StackMemInUse: 1 << 20,
	}
	full := []Message{
		&ListRequest{Prefix: "minio-", ContinueAt: "minio-b", Limit: 250},
		&CreateEnclaveRequest{Name: "tenant-1"},
		&DeleteEnclaveRequest{Name: "tenant-1"},
		&EnclaveStatusRequest{Name: "tenant-1"},
		&EnclaveStatusResponse{Name: "tenant-1", CreatedAt: ts, CreatedBy: id},
		&CreateKeyRequest{Name: "k", Type: KeyTypeChaCha20, AddVersion: true},
		&ImportKeyRequest{Name: "k", Type: KeyTypeAES256, Key: make32(7)},
		&DeleteKeyRequest{Name: "k", Version: 3, AllVersions: true},
		&KeyStatusRequest{Name: "k", Version: 4},
		&KeyStatusResponse{Name: "k", Version: 4, Type: KeyTypeAES256, CreatedAt: ts, CreatedBy: id},
		&EncryptRequest{Name: "k", Version: 1, Plaintext: []byte("pt"), AssociatedData: []byte("{}")},
		&EncryptResponse{Version: 1, Ciphertext: []byte{0, 1, 2}},
		&DecryptRequest{Name: "k", Version: 2, Ciphertext: []byte{9, 8}, AssociatedData: []byte(`{"a":"b"}`)},
		&DecryptResponse{Plaintext: make32(1)},
		&GenerateKeyRequest{Name: "k", Version: 5, AssociatedData: []byte("{}"), Length: 1024},
		&GenerateKeyResponse{Version: 5, Plaintext: make32(2), Ciphertext: []byte{1, 2, 3, 4}},
		&MACRequest{Name: "k", Version: 6, Message: []byte("msg")},
		&MACResponse{Version: 6, MAC: make32(3)},
		&CreatePolicyRequest{Name: "p", Allow: rules, Deny: map[string][]string{"KEY:DELETE": {"*"}}},
		&DeletePolicyRequest{Name: "p"},
		&PolicyRequest{Name: "p"},
		&PolicyResponse{Name: "p", Allow: rules, Deny: map[string][]string{"KEY:DELETE": {"*"}}, CreatedAt: ts, CreatedBy: id},
		&PolicyStatusResponse{Name: "p", CreatedAt: ts, CreatedBy: id},
		&AssignPolicyRequest{Identity: id, Policy: "p"},
		&CreateIdentityRequest{Identity: id, Privilege: "Admin", IsServiceAccount: true, Tags: map[string]string{"team": "storage", "": ""}},
		&DeleteIdentityRequest{Identity: id},
		&IdentityRequest{Identity: id},
		&IdentityResponse{
			Identity: id, Privilege: PrivilegeUser, Policy: "p", CreatedAt: ts, CreatedBy: id,
			IsServiceAccount: true, ServiceAccounts: []string{"h1:a", ""}, Tags: map[string]string{"k": "v"},
		},
		&ListEnclavesResponse{Enclaves: []EnclaveStatusResponse{{Name: "a", CreatedAt: ts}, {}}, ContinueAt: "c"},
		&ListKeysResponse{Keys: []KeyStatusResponse{{Name: "a", Type: KeyTypeAES256}, {Name: "b", Version: 2}}, ContinueAt: "c"},
		&ListPoliciesResponse{Policies: []PolicyStatusResponse{{Name: "a"}}, ContinueAt: "b"},
		&ListIdentitiesResponse{Identities: []IdentityResponse{{Identity: id, Privilege: PrivilegeAdmin}}, ContinueAt: "x"},
		&ErrResponse{Message: "key does not exist"},
		&VersionResponse{Version: "2023-12-01T16-06-52Z", Commit: "abc", APIVersion: "v1", Host: "kms:7373", FIPS140: true},
		&node,
		&ClusterStatusRequest{},
		&ClusterStatusResponse{NodesUp: map[uint32]ServerStatusResponse{2: node, 0: {}}, NodesDown: map[uint32]string{1: "kms3:7373"}},
		&AddClusterNodeRequest{Host: "kms4:7373"},
		&RemoveClusterNodeRequest{Host: "kms4:7373", DeleteClusterOnHost: true},
		&EditClusterRequest{Host: "kms1:7373", RemoveIDs: []uint32{3, 1, 1 << 31}},
		&ProfileStatusResponse{Started: ts, CPU: true, Heap: true, Goroutine: true, Thread: true, BlockRate: 10, MutexFraction: 5},
		&LogRequest{Level: -4, Message: "m", Since: ts, Method: "POST", Path: "/v1/kms", Identity: id, IP: "10.0.0.1", TraceLevel: 2},
		&LogRecord{
			Level: 8, Time: ts, Message: "boom",
			Trace: []LogStackFrame{{Function: "f", File: "a.go", Line: 10}, {}},
			Req:   &LogRequestInfo{Method: "POST", Path: "/v1/kms/e", Identity: id, IP: "::1"},
		},
	}
	empty := make([]Message, 0, len(full))
	for _, m := range full {
		empty = append(empty, reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message))
	}
	return append(full, empty...)
}

func make32(seed byte) []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

func TestMessageRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range sampleMessages() {
		name := reflect.TypeOf(m).Elem().Name()
		t.Run(name, func(t *testing.T) {
			b := m.MarshalProto()
			got := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
			if err := got.UnmarshalProto(b); err != nil {
				t.Fatalf("UnmarshalProto(MarshalProto()) err = %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip = %+v, want %+v", got, m)
			}
			if isZero(m) && len(b) != 0 {
				t.Fatalf("default %s encodes to % x, want no bytes", name, b)
			}
			if !isZero(m) && len(b) == 0 {
				t.Fatalf("non-default %s encodes to no bytes", name)
			}
			// Unknown fields (here: number 99 of every wire type) are skipped.
			extra := append(append([]byte(nil), b...),
				0x98, 0x06, 0x01, // 99 varint
				0x9a, 0x06, 0x02, 'h', 'i', // 99 bytes
				0x9d, 0x06, 1, 2, 3, 4, // 99 fixed32
				0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, // 99 fixed64
				0x9b, 0x06, 0x08, 0x01, 0x9c, 0x06, // 99 group {1: 1}
			)
			got = reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
			if err := got.UnmarshalProto(extra); err != nil {
				t.Fatalf("UnmarshalProto with unknown fields err = %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("with unknown fields = %+v, want %+v", got, m)
			}
			// UnmarshalProto resets the message first.
			if err := got.UnmarshalProto(nil); err != nil || !isZero(got) {
				t.Fatalf("UnmarshalProto(nil) = %+v, %v; want zero message", got, err)
			}
		})
	}
}

func isZero(m Message) bool { return reflect.ValueOf(m).Elem().IsZero() }

func TestUnmarshalMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		b    []byte
	}{
		{"TruncatedTag", []byte{0x80}},
		{"TruncatedVarint", []byte{0x10, 0x80}},
		{"TruncatedBytes", []byte{0x0a, 0x05, 'a'}},
		{"TruncatedFixed32", []byte{0x0d, 1, 2}},
		{"FieldZero", []byte{0x00, 0x01}},
		{"InvalidWireType", []byte{0x0f}},
		{"UnclosedGroup", []byte{0x0b, 0x08, 0x01}},
		{"InvalidUTF8", []byte{0x0a, 0x02, 0xff, 0xfe}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var m KeyStatusResponse
			if err := m.UnmarshalProto(tt.b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("UnmarshalProto(% x) err = %v, want ErrMalformed", tt.b, err)
			}
		})
	}
	// Malformed nested messages are rejected too.
	nested := []struct {
		name string
		m    Message
		b    []byte
	}{
		{"BadTimestamp", &KeyStatusResponse{}, []byte{0x22, 0x02, 0x08, 0x80}},
		{"BadRuleSet", &CreatePolicyRequest{}, []byte{0x12, 0x03, 0x12, 0x01, 0x80}},
		{"BadRule", &CreatePolicyRequest{}, []byte{0x12, 0x07, 0x12, 0x05, 0x0a, 0x03, 0x12, 0x01, 0x80}},
		{"BadListItem", &ListKeysResponse{}, []byte{0x0a, 0x02, 0x0a, 0x05}},
		{"BadTagValue", &IdentityResponse{}, []byte{0x42, 0x03, 0x12, 0x01, 0xff}},
		{"BadNode", &ClusterStatusResponse{}, []byte{0x0a, 0x03, 0x12, 0x01, 0x80}},
		{"BadPacked", &EditClusterRequest{}, []byte{0x12, 0x01, 0x80}},
		{"BadDuration", &ServerStatusResponse{}, []byte{0x22, 0x01, 0x08}},
	}
	for _, tt := range nested {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.m.UnmarshalProto(tt.b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("UnmarshalProto(% x) err = %v, want ErrMalformed", tt.b, err)
			}
		})
	}
}

func TestUnmarshalWrongWireTypeIsSkipped(t *testing.T) {
	t.Parallel()
	// Name (field 1, string) sent as a varint, Version (field 2) as bytes:
	// protobuf-go treats both as unknown fields.
	var m KeyStatusRequest
	if err := m.UnmarshalProto([]byte{0x08, 0x05, 0x12, 0x01, 'x', 0x10, 0x07}); err != nil {
		t.Fatalf("UnmarshalProto err = %v", err)
	}
	if m.Name != "" || m.Version != 7 {
		t.Fatalf("got %+v, want {Name:\"\" Version:7}", m)
	}
}

func TestLastScalarWins(t *testing.T) {
	t.Parallel()
	var m GenerateKeyRequest
	if err := m.UnmarshalProto([]byte{0x0a, 0x01, 'a', 0x20, 0x10, 0x0a, 0x01, 'b', 0x20, 0x20}); err != nil {
		t.Fatal(err)
	}
	if m.Name != "b" || m.Length != 32 {
		t.Fatalf("got %+v, want Name b, Length 32", m)
	}
}

func TestEditClusterUnpacked(t *testing.T) {
	t.Parallel()
	var m EditClusterRequest
	// RemoveIDs 3, 4 unpacked then 5 packed.
	if err := m.UnmarshalProto([]byte{0x10, 0x03, 0x10, 0x04, 0x12, 0x01, 0x05}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.RemoveIDs, []uint32{3, 4, 5}) {
		t.Fatalf("RemoveIDs = %v, want [3 4 5]", m.RemoveIDs)
	}
}

func TestRuleSetWireForm(t *testing.T) {
	t.Parallel()
	// Patterns are written sorted and deduplicated.
	m := CreatePolicyRequest{Allow: map[string][]string{"KEY:LIST": {"b", "a", "b"}}}
	want := []byte{
		0x12, 0x1a, // Allow entry, 26 bytes
		0x0a, 0x08, 'K', 'E', 'Y', ':', 'L', 'I', 'S', 'T', // map key
		0x12, 0x0e, // RuleSet, 14 bytes
		0x0a, 0x05, 0x0a, 0x01, 'a', 0x12, 0x00, // Rules entry "a" -> Rule{}
		0x0a, 0x05, 0x0a, 0x01, 'b', 0x12, 0x00, // Rules entry "b" -> Rule{}
	}
	if got := m.MarshalProto(); string(got) != string(want) {
		t.Fatalf("MarshalProto = % x, want % x", got, want)
	}
	var back CreatePolicyRequest
	if err := back.UnmarshalProto(want); err != nil || !reflect.DeepEqual(back.Allow["KEY:LIST"], []string{"a", "b"}) {
		t.Fatalf("decode = %+v, %v", back, err)
	}
}

func TestVersionResponseJSON(t *testing.T) {
	t.Parallel()
	v := VersionResponse{Version: "v1.0", Commit: "c", APIVersion: "v1", Host: "h:7373", FIPS140: true}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"version":"v1.0","commit":"c","api_version":"v1","host":"h:7373","fips140":true}`
	if string(b) != want {
		t.Fatalf("json.Marshal = %s, want %s", b, want)
	}
	var back VersionResponse
	if err := json.Unmarshal(b, &back); err != nil || back != v {
		t.Fatalf("json.Unmarshal = %+v, %v; want %+v", back, err, v)
	}
	if b, _ := json.Marshal(VersionResponse{}); string(b) != "{}" {
		t.Fatalf("empty VersionResponse JSON = %s, want {}", b)
	}
	var camel VersionResponse
	if err := json.Unmarshal([]byte(`{"apiVersion":"v2","extra":1}`), &camel); err != nil || camel.APIVersion != "v2" {
		t.Fatalf("camelCase decode = %+v, %v; want APIVersion v2", camel, err)
	}
}

func TestErrResponseJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(ErrResponse{Message: "key does not exist"})
	if err != nil || string(b) != `{"message":"key does not exist"}` {
		t.Fatalf("json.Marshal = %s, %v", b, err)
	}
	var back ErrResponse
	if err := json.Unmarshal([]byte(`{"message":"enclave does not exist"}`), &back); err != nil || back.Message != "enclave does not exist" {
		t.Fatalf("json.Unmarshal = %+v, %v", back, err)
	}
}

func TestPrivilege(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want uint32
	}{
		{"SysAdmin", PrivilegeSysAdmin}, {"sysadmin", PrivilegeSysAdmin},
		{"Admin", PrivilegeAdmin}, {"User", PrivilegeUser}, {"", PrivilegeUser},
	}
	for _, tt := range tests {
		got, err := ParsePrivilege(tt.text)
		if err != nil || got != tt.want {
			t.Errorf("ParsePrivilege(%q) = %d, %v; want %d", tt.text, got, err, tt.want)
		}
	}
	if _, err := ParsePrivilege("root"); !errors.Is(err, ErrUnknownPrivilege) {
		t.Errorf("ParsePrivilege(root) err = %v, want ErrUnknownPrivilege", err)
	}
	if PrivilegeName(PrivilegeAdmin) != "Admin" || PrivilegeName(0) != "" {
		t.Error("PrivilegeName mismatch")
	}
}
