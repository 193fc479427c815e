package clientcmd

// CLI spellings of minkms's documentation (issue 10): --id, add-identity
// without IDENTITY, env.

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
)

// runBare runs the client CLI with exactly args (no connection flags
// added) and returns stdout.
func runBare(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "kmsledger", Commands: Commands(nil), Writer: &out, ErrWriter: io.Discard}
	err := app.Run(append([]string{"kmsledger"}, args...))
	return out.String(), err
}

func clearClientEnv(t *testing.T) {
	for _, k := range []string{"MINIO_KMS_API_KEY", "MINIO_KMS_SERVER", "MINIO_KMS_ENCLAVE", "KMSLEDGER_CA_FILE"} {
		t.Setenv(k, "")
	}
}

// TestClientIDFlag: --id is --api-key on every client command, as the
// minkms enclave page writes it; it wins over MINIO_KMS_API_KEY; --id
// and --api-key with different keys are refused; --help does not show it.
func TestClientIDFlag(t *testing.T) {
	clearClientEnv(t)
	other, err := wire.GenerateAPIKey(rand.Reader)
	must(t, err)
	for _, args := range [][]string{
		{"add", "enclave", "aistor-object-store-primary", "--id", cliTestAPIKey},
		{"add", "key", "data-bucket-encryption-key", "--enclave", "aistor-object-store-primary", "--id", cliTestAPIKey},
		{"rm", "enclave", "aistor-object-store-primary", "--id", cliTestAPIKey},
		{"add-enclave", "--id=" + cliTestAPIKey, "e"},
		{"ls-hsm", "--id", cliTestAPIKey},
		{"keygen", "k", "--id", cliTestAPIKey},
	} {
		f := newFakeKMS(t)
		t.Setenv("MINIO_KMS_API_KEY", other) // the fake refuses this one
		args = append(args, "-s", f.Listener.Addr().String(), "--ca", f.caFile)
		_, err := runBare(t, args...)
		if args[0] == "ls-hsm" {
			// Admin JSON routes the fake does not serve: it must have
			// been reached with the right identity (404, not 403).
			if err == nil || errors.Is(err, client.ErrPermission) || errors.Is(err, ErrUsage) {
				t.Errorf("kmsledger %q: err = %v, want a non-permission server error", args, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("kmsledger %q: %v", args, err)
		}
	}

	f := newFakeKMS(t)
	t.Setenv("MINIO_KMS_API_KEY", "")
	if _, err := runBare(t, "add-enclave", "e", "--id", cliTestAPIKey, "-a", other, "-s", f.Listener.Addr().String(), "--ca", f.caFile); !errors.Is(err, ErrUsage) {
		t.Errorf("--id and -a with different keys: err = %v, want a usage error", err)
	}
	if _, err := runBare(t, "add-enclave", "e", "--id", other, "-s", f.Listener.Addr().String(), "--ca", f.caFile); !errors.Is(err, client.ErrPermission) {
		t.Errorf("--id with a key the server does not know: err = %v, want access denied", err)
	}
	if _, err := runBare(t, "add-enclave", "e", "--id", "k1:nope", "-s", f.Listener.Addr().String(), "--ca", f.caFile); err == nil {
		t.Error("--id k1:nope: err = nil")
	}
	f.mu.Lock()
	n := len(f.frames)
	f.mu.Unlock()
	if n != 0 {
		t.Errorf("refused invocations sent %d frames", n)
	}
	help, err := runBare(t, "add-key", "--help")
	if err != nil || !strings.Contains(help, "--api-key") || strings.Contains(help, "--id") {
		t.Errorf("add-key --help (err %v) shows --id or lacks --api-key:\n%s", err, help)
	}
}

// TestAddIdentityNew: add-identity without IDENTITY creates the identity
// of a new API key and prints both; the printed key has that identity.
// A refused creation prints no key.
func TestAddIdentityNew(t *testing.T) {
	clearClientEnv(t)
	tests := []struct {
		name      string
		args      []string
		privilege string
	}{
		{"Admin", []string{"add-identity", "--enclave", "aistor-key-manager", "--admin"}, "Admin"},
		{"User", []string{"add", "identity", "-e", "aistor-key-manager"}, ""},
		{"AdminJSON", []string{"add-identity", "--admin", "--json", "-e", "aistor-key-manager"}, "Admin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeKMS(t)
			out, err := runBare(t, append(tc.args, "-k", "-a", cliTestAPIKey, "-s", f.Listener.Addr().String())...)
			if err != nil {
				t.Fatal(err)
			}
			var key, id string
			if strings.Contains(tc.name, "JSON") {
				var j struct{ APIKey, Identity, Enclave, Privilege string }
				var raw map[string]string
				must(t, json.Unmarshal([]byte(out), &raw))
				j.APIKey, j.Identity, j.Enclave, j.Privilege = raw["api_key"], raw["identity"], raw["enclave"], raw["privilege"]
				if j.Enclave != "aistor-key-manager" || j.Privilege != "Admin" {
					t.Errorf("--json = %s", out)
				}
				key, id = j.APIKey, j.Identity
			} else {
				key, id = printedKey(t, out)
				if !strings.Contains(out, "only this once") {
					t.Errorf("output does not say the key is shown once:\n%s", out)
				}
			}
			if got, err := identityOfKey(key); err != nil || got != id {
				t.Fatalf("printed key has identity %s (%v), printed identity %s", got, err, id)
			}
			path, frame := f.request(t)
			var req wire.CreateIdentityRequest
			must(t, req.UnmarshalProto(frame.Body))
			if path != "/v1/kms/aistor-key-manager" || frame.Cmd != wire.CmdIdentityCreate || req.Identity != id || req.Privilege != tc.privilege {
				t.Fatalf("request %s %v %+v; want IDENTITY:CREATE of %s with privilege %q", path, frame.Cmd, req, id, tc.privilege)
			}
		})
	}
	t.Run("Refused", func(t *testing.T) {
		f := newFakeKMS(t)
		other, err := wire.GenerateAPIKey(rand.Reader)
		must(t, err)
		out, err := runBare(t, "add-identity", "--admin", "-e", "x", "-a", other, "-s", f.Listener.Addr().String(), "--ca", f.caFile)
		if !errors.Is(err, client.ErrPermission) || strings.Contains(out, "k1:") {
			t.Fatalf("refused add-identity: err = %v, output %q; want access denied and no key", err, out)
		}
	})
}

// TestEnvCommand: env prints the settings and the identity of the API
// key, never the key, and the version of each server that answers; a
// server that does not answer is shown and makes the command fail.
func TestEnvCommand(t *testing.T) {
	clearClientEnv(t)
	f := newFakeKMS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	dead := ln.Addr().String()
	ln.Close()
	t.Setenv("MINIO_KMS_API_KEY", cliTestAPIKey)
	t.Setenv("MINIO_KMS_ENCLAVE", "tenant-1")
	t.Setenv("KMSLEDGER_CA_FILE", f.caFile)

	t.Setenv("MINIO_KMS_SERVER", "https://"+f.Listener.Addr().String())
	out, err := runBare(t, "env")
	if err != nil {
		t.Fatalf("env: %v\n%s", err, out)
	}
	for _, w := range []string{cliTestIdentity, "tenant-1", f.caFile, f.Listener.Addr().String() + ": online, version fake-1.2"} {
		if !strings.Contains(out, w) {
			t.Errorf("env output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, cliTestAPIKey) {
		t.Errorf("env prints the API key:\n%s", out)
	}

	t.Setenv("MINIO_KMS_SERVER", f.Listener.Addr().String()+","+dead)
	out, err = runBare(t, "env", "--json")
	if err == nil || !strings.Contains(err.Error(), "1 of 2 servers") {
		t.Errorf("env with a dead server: err = %v, want 1 of 2 servers did not answer", err)
	}
	var e envJSON
	must(t, json.Unmarshal([]byte(out), &e))
	if len(e.Servers) != 2 || !e.Servers[0].Online || e.Servers[0].Version != "fake-1.2" || e.Servers[1].Online || e.Servers[1].Error == "" ||
		e.Identity != cliTestIdentity || e.Enclave != "tenant-1" {
		t.Errorf("env --json = %+v", e)
	}
	if strings.Contains(out, cliTestAPIKey) {
		t.Errorf("env --json prints the API key:\n%s", out)
	}
	// Without trust in the server certificate, the server does not count
	// as answering.
	t.Setenv("KMSLEDGER_CA_FILE", "")
	t.Setenv("MINIO_KMS_SERVER", f.Listener.Addr().String())
	if out, err := runBare(t, "env"); err == nil || !strings.Contains(out, "offline") {
		t.Errorf("env with an untrusted certificate: err = %v\n%s", err, out)
	}
	if _, err := runBare(t, "env", "-a", "k1:garbage"); !errors.Is(err, ErrUsage) {
		t.Errorf("env with a malformed API key: err = %v, want a usage error", err)
	}
}

// printedKey returns the API key and identity printed by add-identity
// without IDENTITY (or by identity without argument).
func printedKey(t *testing.T, out string) (key, id string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "API key:"); ok {
			key = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Identity:"); ok {
			id = strings.TrimSpace(v)
		}
	}
	if !strings.HasPrefix(key, "k1:") || !strings.HasPrefix(id, "h1:") {
		t.Fatalf("no API key and identity in:\n%s", out)
	}
	return key, id
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
