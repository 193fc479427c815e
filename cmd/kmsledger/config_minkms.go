package main

import (
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"
)

// hsmKeyEnvVars are the environment variables of the software HSM key,
// in order of precedence: kmsledger's name, then minkms's.
func hsmKeyEnvVars() []string { return []string{"KMSLEDGER_HSM_KEY", "MINIO_KMS_HSM_KEY"} }

// hsmKey returns the software HSM key of c and where it came from: the
// --hsm-key flag, else the first non-empty one of hsmKeyEnvVars; "", ""
// when there is none.
func hsmKey(c *cli.Context) (key, source string) {
	v := c.String("hsm-key")
	for _, e := range hsmKeyEnvVars() {
		if env := os.Getenv(e); env != "" && (v == "" || v == env) {
			return env, e
		}
	}
	if v != "" {
		return v, "--hsm-key"
	}
	return "", ""
}

// hsmKeyOnly is hsmKey without the source.
func hsmKeyOnly(c *cli.Context) string {
	k, _ := hsmKey(c)
	return k
}

// logHSMKeySource logs which setting gave the software HSM key (never
// the key), and that the others are ignored.
func logHSMKeySource(c *cli.Context, log *slog.Logger) {
	key, src := hsmKey(c)
	if src == "" {
		return
	}
	log.Info("software HSM key configured", "from", src)
	for _, e := range hsmKeyEnvVars() {
		if e != src && os.Getenv(e) != "" && os.Getenv(e) != key {
			log.Warn("ignoring a software HSM key that another setting overrides", "ignored", e, "used", src)
		}
	}
}
