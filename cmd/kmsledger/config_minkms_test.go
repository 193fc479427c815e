package main

import (
	"bytes"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestHSMConfigMinKMSForm: the hsm: section in minkms's map form (name ->
// kind -> settings, auth.key) reads like the list form, for every kind,
// in order; mistakes are errors that name the offending field or kind.
func TestHSMConfigMinKMSForm(t *testing.T) {
	env := map[string]string{"PIN": "1234", "SOFT": "hsm:aes256:x"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	// The section as minkms's HSM page writes it.
	const page = `version: v1
hsm:
  minio:
    minkms:
      server:
        - kms0.hsm-cluster.example.net:7373
        - kms1.hsm-cluster.example.net:7373
      enclave: aistor-key-manager
      key: aistor-key-manager-hsm
      auth:
        key: k1:abc
`
	tests := []struct {
		name, text string
		check      func(*Config) bool
		wantErr    []string
	}{
		{"Page", page, func(c *Config) bool {
			m := c.HSM[0].MinKMS
			return len(c.HSM) == 1 && c.HSM[0].Name == "minio" && m != nil &&
				slices.Equal(m.Server, []string{"kms0.hsm-cluster.example.net:7373", "kms1.hsm-cluster.example.net:7373"}) &&
				m.Enclave == "aistor-key-manager" && m.Key == "aistor-key-manager-hsm" && m.AuthKey == "k1:abc"
		}, nil},
		{"EveryKindInOrder", "version: v1\nhsm:\n  local:\n    soft:\n      key: ${SOFT}\n  tok:\n    pkcs11: {module: m, token: t, pin: \"${PIN}\", key: rek}\n" +
			"  remote:\n    minkms: {server: [a:7373], enclave: e, key: k, auth_key: k1:x}\n", func(c *Config) bool {
			return len(c.HSM) == 3 && c.HSM[0].Name == "local" && c.HSM[0].Soft.Key == env["SOFT"] &&
				c.HSM[1].Name == "tok" && c.HSM[1].PKCS11.PIN == "1234" && c.HSM[2].Name == "remote" && c.HSM[2].MinKMS.AuthKey == "k1:x"
		}, nil},
		{"ListFormWithAuthKey", "version: v1\nhsm:\n  - name: r\n    minkms: {server: [a], enclave: e, key: k, auth: {key: k1:y}}\n",
			func(c *Config) bool { return c.HSM[0].MinKMS.AuthKey == "k1:y" }, nil},
		{"UnknownField", strings.Replace(page, "      enclave:", "      tls_ca: x\n      enclave:", 1), nil, []string{"tls_ca"}},
		{"UnknownAuthField", strings.Replace(page, "        key: k1:abc", "        token: abc", 1), nil, []string{"token"}},
		{"UnknownKind", "version: v1\nhsm:\n  v:\n    vault:\n      server: https://vault:8200\n", nil, []string{`"vault"`, "hsm.v"}},
		{"TwoKinds", "version: v1\nhsm:\n  x:\n    soft: {key: a}\n    minkms: {server: [a], enclave: e, key: k}\n", nil, []string{"exactly one"}},
		{"NotAMapping", "version: v1\nhsm:\n  x: soft\n", nil, []string{"hsm.x"}},
		{"NameInside", "version: v1\nhsm:\n  x:\n    name: y\n", nil, []string{`"name"`}},
		{"AuthTwice", strings.Replace(page, "      auth:", "      auth_key: k1:other\n      auth:", 1), nil, []string{"auth.key and auth_key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ReadConfig(strings.NewReader(tc.text), getenv)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("ReadConfig = %+v, want an error", c)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("ReadConfig err = %v, want one naming %s", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadConfig err = %v", err)
			}
			if !tc.check(c) {
				t.Fatalf("ReadConfig = %+v, values not as written", c.HSM)
			}
		})
	}
}

// TestHSMKeySource: the software HSM key comes from --hsm-key, else
// KMSLEDGER_HSM_KEY, else MINIO_KMS_HSM_KEY; the log names the one used
// and the one ignored, never the key.
func TestHSMKeySource(t *testing.T) {
	const kl, mk, flag = "hsm:aes256:kmsledger-name", "hsm:aes256:minkms-name", "hsm:aes256:flag"
	tests := []struct {
		name           string
		klEnv, mkEnv   string
		args           []string
		want, wantFrom string
		ignored        string
	}{
		{"MinKMSOnly", "", mk, nil, mk, "MINIO_KMS_HSM_KEY", ""},
		{"KMSLedgerOnly", kl, "", nil, kl, "KMSLEDGER_HSM_KEY", ""},
		{"BothKMSLedgerWins", kl, mk, nil, kl, "KMSLEDGER_HSM_KEY", "MINIO_KMS_HSM_KEY"},
		{"FlagWins", kl, mk, []string{"--hsm-key", flag}, flag, "--hsm-key", "KMSLEDGER_HSM_KEY"},
		{"None", "", "", nil, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KMSLEDGER_HSM_KEY", tc.klEnv)
			t.Setenv("MINIO_KMS_HSM_KEY", tc.mkEnv)
			var logs bytes.Buffer
			var got, from string
			app := &cli.App{Name: "kmsledger", Writer: io.Discard, ErrWriter: io.Discard, Commands: []*cli.Command{{
				Name:  "s",
				Flags: []cli.Flag{&cli.StringFlag{Name: "hsm-key", EnvVars: hsmKeyEnvVars()}},
				Action: func(c *cli.Context) error {
					got, from = hsmKey(c)
					logHSMKeySource(c, slog.New(slog.NewTextHandler(&logs, nil)))
					return nil
				},
			}}}
			must(t, app.Run(append([]string{"kmsledger", "s"}, tc.args...)))
			if got != tc.want || from != tc.wantFrom {
				t.Fatalf("key %q from %q, want %q from %q", got, from, tc.want, tc.wantFrom)
			}
			l := logs.String()
			if tc.wantFrom != "" && !strings.Contains(l, "from="+tc.wantFrom) {
				t.Errorf("log does not say the key came from %s:\n%s", tc.wantFrom, l)
			}
			if tc.ignored != "" && !strings.Contains(l, "ignored="+tc.ignored) {
				t.Errorf("log does not say %s is ignored:\n%s", tc.ignored, l)
			}
			for _, k := range []string{kl, mk, flag} {
				if strings.Contains(l, k) {
					t.Errorf("log shows a key:\n%s", l)
				}
			}
		})
	}
}
