package clientcmd

// The CLI tests run one at a time: urfave/cli writes its global help
// flag on every run, which the race detector rightly reports.

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
)

const (
	cliTestAPIKey   = "k1:2COl4dS3G-cjHa3Q-9fUmOrq8yL0Q7a12HH_Yi0oiLw"
	cliTestIdentity = "h1:1XtC8x9-VpkRibo1WuzcIAXzrpKIxLjlMErH9zkZkQE"
)

func TestIdentityRequest(t *testing.T) {
	got, err := identityRequest(cliTestIdentity, true, true, []string{"team=a", "env=x=y", "empty="})
	if err != nil {
		t.Fatal(err)
	}
	want := &wire.CreateIdentityRequest{
		Identity: cliTestIdentity, Privilege: "Admin", IsServiceAccount: true,
		Tags: map[string]string{"team": "a", "env": "x=y", "empty": ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("identityRequest = %+v, want %+v", got, want)
	}
	for _, bad := range []struct {
		id  string
		tag string
	}{{"h1:short", "a=b"}, {cliTestIdentity, "novalue"}, {cliTestIdentity, "=v"}} {
		if _, err := identityRequest(bad.id, false, false, []string{bad.tag}); !errors.Is(err, ErrUsage) {
			t.Errorf("identityRequest(%q, tag %q) err = %v, want ErrUsage", bad.id, bad.tag, err)
		}
	}
}

func TestKeyTypeAndBase64(t *testing.T) {
	for in, want := range map[string]string{"": "", "aes256": "AES256", "AES256": "AES256", "chacha20": "ChaCha20"} {
		if got, err := keyType(in); err != nil || got != want {
			t.Errorf("keyType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := keyType("AES128"); !errors.Is(err, ErrUsage) {
		t.Errorf("keyType(AES128) err = %v, want ErrUsage", err)
	}
	for _, in := range []string{"+/8=", "+/8", "-_8=", "-_8"} {
		if got, err := decodeBase64(in); err != nil || !bytes.Equal(got, []byte{0xfb, 0xff}) {
			t.Errorf("decodeBase64(%q) = % x, %v; want fb ff", in, got, err)
		}
	}
	if _, err := decodeBase64("!!"); !errors.Is(err, ErrUsage) {
		t.Errorf("decodeBase64(!!) err = %v, want ErrUsage", err)
	}
}

// fakeKMS answers the kms protocol for the CLI tests: it records each
// request frame and replies with canned responses.
type fakeKMS struct {
	*httptest.Server
	caFile string

	mu       sync.Mutex
	path     string
	frames   []wire.Frame
	keyNames []string // served by KEY:LIST, two per page
}

func newFakeKMS(t *testing.T) *fakeKMS {
	t.Helper()
	f := &fakeKMS{keyNames: []string{"a", "b", "c", "d", "e"}}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(f.handle))
	f.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	f.StartTLS()
	t.Cleanup(f.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})
	if err := os.WriteFile(f.caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeKMS) handle(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, b []byte) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(status)
		_, _ = w.Write(b)
	}
	if r.URL.Path == "/version" { // no client certificate needed
		reply(http.StatusOK, (&wire.VersionResponse{Version: "fake-1.2", Commit: "c0ffee", APIVersion: "v1"}).MarshalProto())
		return
	}
	if len(r.TLS.PeerCertificates) == 0 || wire.IdentityFromCert(r.TLS.PeerCertificates[0]) != cliTestIdentity {
		reply(client.ErrPermission.Status, (&wire.ErrResponse{Message: client.ErrPermission.Message}).MarshalProto())
		return
	}
	body, _ := io.ReadAll(r.Body)
	frames, err := wire.DecodeFrames(body)
	if err != nil {
		reply(http.StatusBadRequest, nil)
		return
	}
	f.mu.Lock()
	f.path, f.frames = r.URL.Path, append(f.frames, frames...)
	f.mu.Unlock()

	var out []byte
	for _, fr := range frames {
		var msg wire.Message
		switch fr.Cmd {
		case wire.CmdKeyList:
			var req wire.ListRequest
			_ = req.UnmarshalProto(fr.Body)
			i := sort.SearchStrings(f.keyNames, req.ContinueAt)
			resp := &wire.ListKeysResponse{}
			for ; i < len(f.keyNames) && len(resp.Keys) < 2; i++ {
				resp.Keys = append(resp.Keys, wire.KeyStatusResponse{Name: f.keyNames[i], Type: wire.KeyTypeAES256})
			}
			if i < len(f.keyNames) {
				resp.ContinueAt = f.keyNames[i]
			}
			msg = resp
		case wire.CmdEnclaveList, wire.CmdIdentityList, wire.CmdPolicyList:
			msg = f.namePage(fr)
		case wire.CmdKeyStatus:
			msg = &wire.KeyStatusResponse{Name: "k", Version: 3, Type: wire.KeyTypeChaCha20}
		case wire.CmdKeyGenerate:
			msg = &wire.GenerateKeyResponse{Version: 1, Plaintext: []byte{1, 2}, Ciphertext: []byte{3, 4}}
		case wire.CmdKeyEncrypt:
			msg = &wire.EncryptResponse{Version: 1, Ciphertext: []byte{0xfb, 0xff}}
		case wire.CmdKeyDecrypt:
			msg = &wire.DecryptResponse{Plaintext: []byte("hello")}
		case wire.CmdIdentityStatus:
			msg = &wire.IdentityResponse{Identity: cliTestIdentity, Privilege: wire.PrivilegeAdmin, Tags: map[string]string{"t": "v"}}
		default:
			continue // write commands: empty 200
		}
		out = wire.AppendFrame(out, fr.Cmd, msg.MarshalProto())
	}
	reply(http.StatusOK, out)
}

// namePage answers ENCLAVE:LIST, IDENTITY:LIST and POLICY:LIST with
// the page of keyNames (two per page) that starts at the request's
// ContinueAt.
func (f *fakeKMS) namePage(fr wire.Frame) wire.Message {
	var req wire.ListRequest
	_ = req.UnmarshalProto(fr.Body)
	i := sort.SearchStrings(f.keyNames, req.ContinueAt)
	page := f.keyNames[i:min(i+2, len(f.keyNames))]
	next := ""
	if i+2 < len(f.keyNames) {
		next = f.keyNames[i+2]
	}
	switch fr.Cmd {
	case wire.CmdEnclaveList:
		r := &wire.ListEnclavesResponse{ContinueAt: next}
		for _, n := range page {
			r.Enclaves = append(r.Enclaves, wire.EnclaveStatusResponse{Name: n})
		}
		return r
	case wire.CmdIdentityList:
		r := &wire.ListIdentitiesResponse{ContinueAt: next}
		for _, n := range page {
			r.Identities = append(r.Identities, wire.IdentityResponse{Identity: n, Privilege: wire.PrivilegeUser})
		}
		return r
	}
	r := &wire.ListPoliciesResponse{ContinueAt: next}
	for _, n := range page {
		r.Policies = append(r.Policies, wire.PolicyStatusResponse{Name: n})
	}
	return r
}

// run runs the client CLI with args plus the connection flags for f and
// returns its output.
func (f *fakeKMS) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "kmsledger", Commands: Commands(nil), Writer: &out, ErrWriter: io.Discard}
	conn := []string{"-a", cliTestAPIKey, "--server", "https://" + f.Listener.Addr().String(), "--ca", f.caFile}
	argv := append([]string{"kmsledger"}, args[:1]...)
	if args[0] == "add" || args[0] == "rm" || args[0] == "ls" || args[0] == "stat" || args[0] == "get" || args[0] == "set" {
		argv = append(argv, args[1])
		args = args[1:]
	}
	argv = append(append(argv, conn...), args[1:]...)
	err := app.Run(argv)
	return out.String(), err
}

// request returns the path and the single frame of the last request.
func (f *fakeKMS) request(t *testing.T) (string, wire.Frame) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.frames) == 0 {
		t.Fatal("no request")
	}
	return f.path, f.frames[len(f.frames)-1]
}

func TestClientCommands(t *testing.T) {
	policyFile := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(policyFile, []byte(`{"allow":{"key:generate":"minio-*","KEY:DECRYPT":["a","b*"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		path string
		cmd  wire.Command
		req  wire.Message
		out  string
	}{
		{"AddEnclave", []string{"add-enclave", "t1"}, "/v1/kms", wire.CmdEnclaveCreate, &wire.CreateEnclaveRequest{Name: "t1"}, ""},
		{"AddEnclaveSpaced", []string{"add", "enclave", "t1"}, "/v1/kms", wire.CmdEnclaveCreate, &wire.CreateEnclaveRequest{Name: "t1"}, ""},
		{"RmEnclaveSpaced", []string{"rm", "enclave", "t1", "-e", "ignored"}, "/v1/kms", wire.CmdEnclaveDelete, &wire.DeleteEnclaveRequest{Name: "t1"}, ""},
		{"AddKey", []string{"add-key", "-e", "e1", "k"}, "/v1/kms/e1", wire.CmdKeyCreate, &wire.CreateKeyRequest{Name: "k"}, ""},
		{"AddKeyFlagsAfterName", []string{"add-key", "k", "--type", "chacha20", "--enclave=e1"}, "/v1/kms/e1", wire.CmdKeyCreate,
			&wire.CreateKeyRequest{Name: "k", Type: "ChaCha20"}, ""},
		{"AddKeyVersion", []string{"add", "key", "k", "--version", "-e", "e1"}, "/v1/kms/e1", wire.CmdKeyCreate,
			&wire.CreateKeyRequest{Name: "k", AddVersion: true}, ""},
		{"ImportKey", []string{"add-key", "k", "--import", "AQID", "--type", "AES256"}, "/v1/kms", wire.CmdKeyImport,
			&wire.ImportKeyRequest{Name: "k", Type: "AES256", Key: []byte{1, 2, 3}}, ""},
		{"RmKeyLatest", []string{"rm-key", "k", "-e", "e1"}, "/v1/kms/e1", wire.CmdKeyDelete, &wire.DeleteKeyRequest{Name: "k"}, ""},
		{"RmKeyVersion", []string{"rm", "key", "k", "--version", "2"}, "/v1/kms", wire.CmdKeyDelete, &wire.DeleteKeyRequest{Name: "k", Version: 2}, ""},
		{"RmKeyAll", []string{"rm-key", "--all", "k"}, "/v1/kms", wire.CmdKeyDelete, &wire.DeleteKeyRequest{Name: "k", AllVersions: true}, ""},
		{"Keygen", []string{"keygen", "k", "--context", "{}", "--length", "64"}, "/v1/kms", wire.CmdKeyGenerate,
			&wire.GenerateKeyRequest{Name: "k", AssociatedData: []byte("{}"), Length: 64}, "plaintext:  AQI=\nciphertext: AwQ=\n"},
		{"KeygenJSON", []string{"keygen", "k", "--json"}, "/v1/kms", wire.CmdKeyGenerate,
			&wire.GenerateKeyRequest{Name: "k", Length: 32}, "{\n  \"version\": 1,\n  \"plaintext\": \"AQI=\",\n  \"ciphertext\": \"AwQ=\"\n}\n"},
		{"Encrypt", []string{"encrypt", "k", "hello", "--context", "ctx"}, "/v1/kms", wire.CmdKeyEncrypt,
			&wire.EncryptRequest{Name: "k", Plaintext: []byte("hello"), AssociatedData: []byte("ctx")}, "+/8=\n"},
		{"Decrypt", []string{"decrypt", "k", "+/8=", "--context", "ctx"}, "/v1/kms", wire.CmdKeyDecrypt,
			&wire.DecryptRequest{Name: "k", Ciphertext: []byte{0xfb, 0xff}, AssociatedData: []byte("ctx")}, "aGVsbG8=\n"},
		{"DecryptRaw", []string{"decrypt", "k", "+/8=", "--raw"}, "/v1/kms", wire.CmdKeyDecrypt,
			&wire.DecryptRequest{Name: "k", Ciphertext: []byte{0xfb, 0xff}}, "hello"},
		{"DecryptDashArg", []string{"decrypt", "k", "--", "-_8"}, "/v1/kms", wire.CmdKeyDecrypt,
			&wire.DecryptRequest{Name: "k", Ciphertext: []byte{0xfb, 0xff}}, "aGVsbG8=\n"},
		{"AddIdentity", []string{"add-identity", cliTestIdentity, "--admin", "--service", "--tag", "a=b", "--tag", "c=d", "-e", "e1"},
			"/v1/kms/e1", wire.CmdIdentityCreate, &wire.CreateIdentityRequest{Identity: cliTestIdentity, Privilege: "Admin",
				IsServiceAccount: true, Tags: map[string]string{"a": "b", "c": "d"}}, ""},
		{"GetIdentity", []string{"get-identity", cliTestIdentity}, "/v1/kms", wire.CmdIdentityStatus, &wire.IdentityRequest{Identity: cliTestIdentity},
			"Identity:        " + cliTestIdentity + "\nPrivilege:       Admin\nPolicy:          \nCreated:         \nCreated by:      \nService account: false\nTag t:           v\n"},
		{"RmIdentity", []string{"rm", "identity", cliTestIdentity}, "/v1/kms", wire.CmdIdentityDelete, &wire.DeleteIdentityRequest{Identity: cliTestIdentity}, ""},
		{"AddPolicy", []string{"add-policy", "p", policyFile, "-e", "e1"}, "/v1/kms/e1", wire.CmdPolicyCreate,
			&wire.CreatePolicyRequest{Name: "p", Allow: map[string][]string{"KEY:GENERATE": {"minio-*"}, "KEY:DECRYPT": {"a", "b*"}}}, ""},
		{"SetPolicy", []string{"set-policy", "p", cliTestIdentity}, "/v1/kms", wire.CmdPolicyAssign,
			&wire.AssignPolicyRequest{Identity: cliTestIdentity, Policy: "p"}, ""},
		{"SetPolicySpaced", []string{"set", "policy", "p", cliTestIdentity}, "/v1/kms", wire.CmdPolicyAssign,
			&wire.AssignPolicyRequest{Identity: cliTestIdentity, Policy: "p"}, ""},
		{"RmPolicy", []string{"rm-policy", "p"}, "/v1/kms", wire.CmdPolicyDelete, &wire.DeletePolicyRequest{Name: "p"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeKMS(t)
			out, err := f.run(t, tt.args...)
			if err != nil {
				t.Fatalf("kmsledger %q err = %v", tt.args, err)
			}
			path, frame := f.request(t)
			if path != tt.path || frame.Cmd != tt.cmd {
				t.Fatalf("request %s %v, want %s %v", path, frame.Cmd, tt.path, tt.cmd)
			}
			if want := tt.req.MarshalProto(); !bytes.Equal(frame.Body, want) {
				t.Fatalf("request body % x, want % x", frame.Body, want)
			}
			if out != tt.out {
				t.Fatalf("output %q, want %q", out, tt.out)
			}
		})
	}
}

// TestClientListCommands: ls-enclave, ls-identity and ls-policy follow
// the listing over its pages and print one name per line, or a JSON
// array with --json.
func TestClientListCommands(t *testing.T) {
	for _, args := range [][]string{{"ls-enclave"}, {"ls", "identity"}, {"ls-policy", "-e", "e1"}} {
		f := newFakeKMS(t)
		out, err := f.run(t, args...)
		if err != nil || out != "a\nb\nc\nd\ne\n" {
			t.Errorf("%q = %q, %v; want a to e, one per line", args, out, err)
		}
		f.mu.Lock()
		n := len(f.frames)
		f.mu.Unlock()
		if n != 3 {
			t.Errorf("%q sent %d requests, want 3 (pages of two)", args, n)
		}
		out, err = f.run(t, append(args, "--json")...)
		var items []map[string]any
		if err != nil || json.Unmarshal([]byte(out), &items) != nil || len(items) != 5 {
			t.Errorf("%q --json = %q, %v; want an array of 5", args, out, err)
		}
	}
}

func TestClientCommandErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"MissingArg", []string{"add-key"}, ErrUsage},
		{"ExtraArg", []string{"rm-enclave", "a", "b"}, ErrUsage},
		{"UnknownFlagAfterArg", []string{"add-key", "k", "--colour", "red"}, ErrUsage},
		{"FlagWithoutValue", []string{"add-key", "k", "--type"}, ErrUsage},
		{"BadType", []string{"add-key", "k", "--type", "AES128"}, ErrUsage},
		{"ImportAndVersion", []string{"add-key", "k", "--import", "AQID", "--version"}, ErrUsage},
		{"VersionAndAll", []string{"rm-key", "k", "--version", "2", "--all"}, ErrUsage},
		{"BadIdentity", []string{"add-identity", "h1:nope"}, ErrUsage},
		{"BadCiphertext", []string{"decrypt", "k", "!!"}, ErrUsage},
		{"BadPolicy", []string{"add-policy", "p", "testdata-does-not-exist.json"}, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeKMS(t)
			if _, err := f.run(t, tt.args...); !errors.Is(err, tt.want) {
				t.Fatalf("kmsledger %q err = %v, want %v", tt.args, err, tt.want)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.frames) != 0 {
				t.Fatalf("kmsledger %q sent %d frames, want none", tt.args, len(f.frames))
			}
		})
	}
}

func TestClientServerError(t *testing.T) {
	f := newFakeKMS(t)
	var out bytes.Buffer
	app := &cli.App{Name: "kmsledger", Commands: Commands(nil), Writer: &out, ErrWriter: io.Discard}
	other, _ := wire.GenerateAPIKey(bytes.NewReader(bytes.Repeat([]byte{9}, 32)))
	err := app.Run([]string{"kmsledger", "ls-key", "-a", other, "-s", f.Listener.Addr().String(), "--ca", f.caFile})
	if !errors.Is(err, client.ErrPermission) {
		t.Fatalf("err = %v, want ErrPermission", err)
	}
	if want := "access denied: insufficient permissions (status 403)"; err.Error() != want {
		t.Fatalf("error %q, want %q", err.Error(), want)
	}
}

func TestClientEnvironment(t *testing.T) {
	f := newFakeKMS(t)
	t.Setenv("MINIO_KMS_API_KEY", cliTestAPIKey)
	t.Setenv("MINIO_KMS_SERVER", "https://127.0.0.1:1,"+f.Listener.Addr().String())
	t.Setenv("MINIO_KMS_ENCLAVE", "env-enclave")
	t.Setenv("KMSLEDGER_CA_FILE", f.caFile)
	app := &cli.App{Name: "kmsledger", Commands: Commands(nil), Writer: io.Discard, ErrWriter: io.Discard}
	if err := app.Run([]string{"kmsledger", "add-key", "k"}); err != nil {
		t.Fatalf("add-key with environment err = %v", err)
	}
	if path, frame := f.request(t); path != "/v1/kms/env-enclave" || frame.Cmd != wire.CmdKeyCreate {
		t.Fatalf("request %s %v, want /v1/kms/env-enclave KEY:CREATE", path, frame.Cmd)
	}
	// Without --ca the test server's certificate is not trusted, unless -k.
	t.Setenv("KMSLEDGER_CA_FILE", "")
	if err := app.Run([]string{"kmsledger", "add-key", "k"}); err == nil {
		t.Fatal("add-key with an untrusted server certificate: err = nil")
	}
	if err := app.Run([]string{"kmsledger", "add-key", "k", "-k"}); err != nil {
		t.Fatalf("add-key -k err = %v", err)
	}
}
