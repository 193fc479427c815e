package main

import (
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/hsm/softkey"
)

// TestServerRefusesBadSettingsBeforeOpening: a negative audit or
// checkpoint setting, or no HSM at all, is a usage error of `server`
// reported before the node opens: the data dir gets no ledger.
func TestServerRefusesBadSettingsBeforeOpening(t *testing.T) {
	t.Setenv("KMSLEDGER_HSM_KEY", "")
	t.Setenv("MINIO_KMS_HSM_KEY", "")
	key, err := softkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		wantUsage bool
	}{
		{"NegativeBatch", []string{"--hsm-key", key, "--audit-batch", "-1"}, true},
		{"NegativeCheckpointEvents", []string{"--hsm-key", key, "--checkpoint-events", "-5"}, true},
		{"NegativeWaitAuditOff", []string{"--hsm-key", key, "--audit=false", "--audit-wait", "-1s"}, true},
		{"NoHSM", nil, false},
		{"BadLogFormat", []string{"--hsm-key", key, "--log-format", "xml"}, false},
		{"NegativeKeyCache", []string{"--hsm-key", key, "--key-cache", "-1"}, false},
		{"HugeKeyCache", []string{"--hsm-key", key, "--key-cache", "10000001"}, false},
		{"MemoryLimitWithoutUnit", []string{"--hsm-key", key, "--memory-limit", "1G"}, false},
		{"TinyMemoryLimit", []string{"--hsm-key", key, "--memory-limit", "1024"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			app := &cli.App{Name: "kmsledger", Commands: serverCommands(), Writer: io.Discard, ErrWriter: io.Discard}
			err := app.Run(append([]string{"kmsledger", "server", "--address", "127.0.0.1:0", "--log-level", "error", dir}, tc.args...))
			if err == nil || errors.Is(err, errUsage) != tc.wantUsage {
				t.Fatalf("server %v err = %v, want an error (usage: %v)", tc.args, err, tc.wantUsage)
			}
			if _, err := os.Stat(filepath.Join(dir, "jetstream")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the refused start made a ledger (stat err = %v)", err)
			}
		})
	}
}
