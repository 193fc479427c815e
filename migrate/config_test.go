package migrate_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kmsledger/kmsledger/migrate"
)

// env returns a getenv over a fixed map.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

var fullEnv = map[string]string{
	"KES_ADMIN":       "2cb2f9a360a05426aa1dd3426d1cd3c9f98fc520a8d55a191e7329bd64481114",
	"SKIP_READY_AUTH": "true",
	"MINIO_IDENTITY":  "54cd2e2f0410061385ce7dda7fcd46f95c1f93c53eab4fe03225f6f20153fff9",
	"EXTRA_KEY":       "k2",
	"KES_FS_PATH":     "/var/lib/kes/keys",
	"VAULT_ROLE_ID":   "role-1",
	"VAULT_SECRET_ID": "", // Set but empty is allowed.
}

func readConfig(t *testing.T, file string, getenv map[string]string) (*migrate.Config, error) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return migrate.ReadConfig(f, env(getenv))
}

func TestReadConfigFS(t *testing.T) {
	t.Parallel()
	c, err := readConfig(t, "fs.yml", fullEnv)
	if err != nil {
		t.Fatalf("ReadConfig err = %v, want nil", err)
	}
	want := &migrate.Config{
		Admin: fullEnv["KES_ADMIN"],
		Policies: map[string]migrate.Policy{
			"minio": {
				Allow:      []string{"/v1/key/create/minio-*", "/v1/key/generate/minio-*", "/v1/key/decrypt/minio-*"},
				Deny:       []string{"/v1/key/generate/minio-internal*"},
				Identities: []string{fullEnv["MINIO_IDENTITY"], "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"},
			},
			"monitoring": {Allow: []string{"/v1/metrics"}, Identities: []string{}},
		},
		Keystore: migrate.Keystore{Kind: "fs", FS: &migrate.FSConfig{Path: "/var/lib/kes/keys"}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("ReadConfig =\n%+v\nwant\n%+v", c, want)
	}
}

func TestReadConfigVault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want migrate.VaultConfig
	}{
		{"vault-approle.yml", migrate.VaultConfig{
			Endpoint: "https://vault.example.net:8200", Engine: "secrets", Version: "v2", Namespace: "ns1", Prefix: "tenant-1",
			AppRole: &migrate.AppRole{Namespace: "/", Engine: "approle-kes", ID: "role-1", Secret: ""},
			TLS:     migrate.VaultTLS{Key: "./vault/client.key", Cert: "./vault/client.crt", CA: "./vault/CAs"},
		}},
		{"vault-defaults.yml", migrate.VaultConfig{
			Endpoint: "http://127.0.0.1:8200", Engine: "kv", Version: "v1",
			Kubernetes: &migrate.Kubernetes{Engine: "kubernetes", Role: "kes", JWT: "/var/run/secrets/kubernetes.io/serviceaccount/token"},
			Transit:    &migrate.Transit{Engine: "transit", Key: "kes-wrap"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			c, err := readConfig(t, tt.file, fullEnv)
			if err != nil {
				t.Fatalf("ReadConfig err = %v, want nil", err)
			}
			if c.Keystore.Kind != "vault" || c.Keystore.FS != nil || c.Keystore.Vault == nil || !reflect.DeepEqual(*c.Keystore.Vault, tt.want) {
				t.Errorf("Keystore = %+v (vault %+v), want vault %+v", c.Keystore, c.Keystore.Vault, tt.want)
			}
		})
	}
}

// TestReadConfigOtherKeystores checks that configs for key stores this
// package cannot read still parse, and that Open then refuses them.
func TestReadConfigOtherKeystores(t *testing.T) {
	t.Parallel()
	for file, kind := range map[string]string{"aws.yml": "aws.secretsmanager", "memory.yml": ""} {
		c, err := readConfig(t, file, nil)
		if err != nil || c.Keystore.Kind != kind {
			t.Errorf("ReadConfig(%s) = %+v, %v, want kind %q", file, c, err, kind)
			continue
		}
		if _, err := migrate.Open(t.Context(), c, nil); !errors.Is(err, migrate.ErrUnsupported) {
			t.Errorf("Open(%s) err = %v, want ErrUnsupported", file, err)
		}
	}
}

func TestReadConfigErrors(t *testing.T) {
	t.Parallel()
	noExtra := map[string]string{}
	for k, v := range fullEnv {
		if k != "EXTRA_KEY" && k != "KES_FS_PATH" {
			noExtra[k] = v
		}
	}
	tests := []struct {
		file string
		env  map[string]string
		want error
		msg  string
	}{
		{"fs.yml", noExtra, migrate.ErrMissingEnv, "${EXTRA_KEY} (line 54), ${KES_FS_PATH} (line 58)"},
		{"fs.yml", nil, migrate.ErrMissingEnv, "${KES_ADMIN} (line 6)"},
		{"bad-yaml.yml", nil, migrate.ErrConfig, "yaml"},
		{"bad-version.yml", nil, migrate.ErrConfig, `version "v2"`},
		{"bad-vault-version.yml", nil, migrate.ErrConfig, `version "v3"`},
		{"vault-no-endpoint.yml", nil, migrate.ErrConfig, "endpoint is empty"},
		{"fs-no-path.yml", nil, migrate.ErrConfig, "keystore.fs.path is empty"},
		{"two-keystores.yml", nil, migrate.ErrConfig, "2 backends (fs, gcp.secretmanager)"},
		{"bad-policy.yml", nil, migrate.ErrConfig, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			c, err := readConfig(t, tt.file, tt.env)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) || c != nil {
				t.Errorf("ReadConfig = %v, %v, want nil, %v mentioning %q", c, err, tt.want, tt.msg)
			}
		})
	}
	if _, err := migrate.ReadConfig(strings.NewReader(""), env(nil)); !errors.Is(err, migrate.ErrConfig) {
		t.Errorf("ReadConfig(empty) err = %v, want ErrConfig", err)
	}
}

// TestReadConfigExpandsOnlyWholeValues pins the ${…} rule: whole scalar
// values only, never keys, never text around it.
func TestReadConfigExpandsOnlyWholeValues(t *testing.T) {
	t.Parallel()
	const cfg = `
admin: {identity: "${ADMIN}"}
policy:
  ${NOT_EXPANDED}:
    allow: ["/v1/key/${NOT_EXPANDED_EITHER}", "${PATTERN}"]
keystore:
  fs: {path: "  ${DIR}  "}
`
	c, err := migrate.ReadConfig(strings.NewReader(cfg), env(map[string]string{"ADMIN": "a", "PATTERN": "/v1/*", "DIR": "/d"}))
	if err != nil {
		t.Fatalf("ReadConfig err = %v, want nil", err)
	}
	p, ok := c.Policies["${NOT_EXPANDED}"]
	if c.Admin != "a" || !ok || !reflect.DeepEqual(p.Allow, []string{"/v1/key/${NOT_EXPANDED_EITHER}", "/v1/*"}) || c.Keystore.FS.Path != "/d" {
		t.Errorf("ReadConfig = %+v (fs %+v)", c, c.Keystore.FS)
	}
}
