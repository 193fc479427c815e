package config

import (
	"strings"
	"testing"
	"time"
)

// TestHSMConfigEnv: ${NAME} in a configuration value is replaced by the
// variable verbatim, whatever YAML syntax it holds, keeps numbers numbers,
// is not expanded in comments, and a missing variable is an error.
func TestHSMConfigEnv(t *testing.T) {
	env := map[string]string{"PIN": `#x: 'y" [z]`, "SLOT": "3", "HOST": "a.example", "EMPTY": "", "N": "null", "T": "true"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	const pkcs = "version: v1\n# old: ${GONE}\nhsm:\n  - name: t\n    pkcs11:\n      module: m\n      slot: ${SLOT}\n      pin: ${PIN}\n      key: k\n"
	tests := []struct {
		name, text string
		check      func(*Config) bool
		wantErr    string
	}{
		{"VerbatimAndNumber", pkcs, func(c *Config) bool {
			p := c.HSM[0].PKCS11
			return p.PIN == env["PIN"] && p.Slot != nil && *p.Slot == 3
		}, ""},
		{"InsideString", "version: v1\nhsm:\n  - name: r\n    minkms: {server: [\"${HOST}:7373\"], enclave: e, key: k, auth_key: \"${EMPTY}\"}\n",
			func(c *Config) bool {
				return c.HSM[0].Remote.Server[0] == "a.example:7373" && c.HSM[0].Remote.AuthKey == ""
			}, ""},
		{"NullAndBool", "version: v1\naudit:\n  sync: ${T}\nhsm:\n  - name: t\n    pkcs11:\n      module: m\n      pin: ${N}\n      key: k\n",
			func(c *Config) bool { return c.Audit.Sync && c.HSM[0].PKCS11.PIN == "null" }, ""},
		{"Missing", "version: v1\naddress: ${NOPE}\ndir: ${NOPE2}\n", nil, "NOPE, NOPE2 is not set"},
		{"UnknownField", "version: v1\nadress: x\n", nil, "adress"},
		{"Snapshot", "version: v1\nsnapshot: {events: 5000, interval: 90s, keep: 3}\n", func(c *Config) bool {
			return c.Snapshot.Events == 5000 && c.Snapshot.Interval == 90*time.Second && c.Snapshot.Keep == 3 && !c.Snapshot.Disabled
		}, ""},
		{"SnapshotUnknownField", "version: v1\nsnapshot: {every: 5}\n", nil, "every"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Read(strings.NewReader(tc.text), getenv)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Read err = %v, want one saying %q", err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Read err = %v", err)
			case tc.check != nil && !tc.check(c):
				t.Fatalf("Read = %+v, values not as set", c)
			}
		})
	}
}

// TestKeyCacheConfig: cache.keys sets the key cache's size; a negative,
// too large or non-numeric size is refused with an error naming it.
func TestKeyCacheConfig(t *testing.T) {
	getenv := func(string) (string, bool) { return "", false }
	for _, tc := range []struct {
		text    string
		want    int
		wantErr string
	}{
		{"version: v1\n", 0, ""},
		{"version: v1\ncache:\n  keys: 5000\n", 5000, ""},
		{"version: v1\ncache: {keys: -1}\n", 0, "cache.keys: -1 key versions: want 0 (the default) to 10000000"},
		{"version: v1\ncache: {keys: 10000001}\n", 0, "cache.keys: 10000001"},
		{"version: v1\ncache: {keys: many}\n", 0, "many"},
	} {
		c, err := Read(strings.NewReader(tc.text), getenv)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: err = %v, want one saying %q", tc.text, err, tc.wantErr)
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.text, err)
		case tc.wantErr == "" && c.Cache.Keys != tc.want:
			t.Errorf("%q: cache.keys = %d, want %d", tc.text, c.Cache.Keys, tc.want)
		}
	}
}
