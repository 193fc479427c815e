package main

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

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
