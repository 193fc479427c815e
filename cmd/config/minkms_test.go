package config

import (
	"slices"
	"strings"
	"testing"
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
			m := c.HSM[0].Remote
			return len(c.HSM) == 1 && c.HSM[0].Name == "minio" && m != nil &&
				slices.Equal(m.Server, []string{"kms0.hsm-cluster.example.net:7373", "kms1.hsm-cluster.example.net:7373"}) &&
				m.Enclave == "aistor-key-manager" && m.Key == "aistor-key-manager-hsm" && m.AuthKey == "k1:abc"
		}, nil},
		{"EveryKindInOrder", "version: v1\nhsm:\n  local:\n    soft:\n      key: ${SOFT}\n  tok:\n    pkcs11: {module: m, token: t, pin: \"${PIN}\", key: rek}\n" +
			"  remote:\n    minkms: {server: [a:7373], enclave: e, key: k, auth_key: k1:x}\n", func(c *Config) bool {
			return len(c.HSM) == 3 && c.HSM[0].Name == "local" && c.HSM[0].Soft.Key == env["SOFT"] &&
				c.HSM[1].Name == "tok" && c.HSM[1].PKCS11.PIN == "1234" && c.HSM[2].Name == "remote" && c.HSM[2].Remote.AuthKey == "k1:x"
		}, nil},
		{"ListFormWithAuthKey", "version: v1\nhsm:\n  - name: r\n    minkms: {server: [a], enclave: e, key: k, auth: {key: k1:y}}\n",
			func(c *Config) bool { return c.HSM[0].Remote.AuthKey == "k1:y" }, nil},
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
			c, err := Read(strings.NewReader(tc.text), getenv)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Read = %+v, want an error", c)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Read err = %v, want one naming %s", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Read err = %v", err)
			}
			if !tc.check(c) {
				t.Fatalf("Read = %+v, values not as written", c.HSM)
			}
		})
	}
}
